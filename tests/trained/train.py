"""The trained checkpoint the own-model tests build from: the one the package ships (zoo/demo/train.py)."""
from zoo.demo.train import checkpoint  # noqa: F401
