"""A small detector trained for real in the test session: synthetic shapes data, a tiny Faster R-CNN, a cached
checkpoint. The manifest names ``trained.detector:build`` (``tests/`` on the import path)."""
