"""The synthetic shapes data, which the package's demo detector ships (zoo/demo/shapes.py)."""
from zoo.demo.shapes import CLASSES, SIZE, sample, samples, write_coco  # noqa: F401
