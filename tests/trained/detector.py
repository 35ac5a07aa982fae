"""A detector of the user's own, importable from outside the package (``trained.detector:build``, with tests/ on
PYTHONPATH): the demo detector's architecture (zoo/build/demo/detector.py)."""
from zoo.build.demo.detector import backbone, build  # noqa: F401
