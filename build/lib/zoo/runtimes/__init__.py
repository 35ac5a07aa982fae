"""Runtimes: the callables `zoo.load` returns. ``base`` holds the interface (no torch); one module per backend."""
