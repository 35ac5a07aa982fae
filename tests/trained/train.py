"""The trained checkpoint the own-model tests build from: the one the package ships (zoo/build/demo/train.py)."""
from zoo.build.demo.train import checkpoint  # noqa: F401
