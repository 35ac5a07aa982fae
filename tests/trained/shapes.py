"""The synthetic shapes data, which the package's demo detector ships (zoo/build/demo/shapes.py)."""
from zoo.build.demo.shapes import CLASSES, SIZE, sample, samples, write_coco  # noqa: F401
