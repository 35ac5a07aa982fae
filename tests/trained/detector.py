"""A detector of the user's own, importable from outside the package (``trained.detector:build``, with tests/ on
PYTHONPATH): the demo detector's architecture (zoo/demo/detector.py)."""
from zoo.demo.detector import backbone, build  # noqa: F401
