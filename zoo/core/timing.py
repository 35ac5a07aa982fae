"""Call timings that say what they mean: the first call (loading, compiling, warming caches) apart from the warm
median of the calls after it, so that a one-off cost never reads as the artifact's speed."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass


@dataclass
class Timing:
    first: float   # seconds, the first call
    warm: float    # seconds, the median of the later calls (the first call's, when there was only one)
    calls: int

    @classmethod
    def of(cls, seconds: list[float]) -> "Timing":
        return cls(seconds[0], statistics.median(seconds[1:] or seconds), len(seconds))

    def text(self, unit: str = "img") -> str:
        if self.calls == 1:
            return f"{self.first:.3f}s/{unit} (one call, not warmed)"
        return f"{self.warm:.3f}s/{unit} warm (median of {self.calls - 1}; first call {self.first:.2f}s)"


def timed_calls(fn, inputs: list) -> tuple[list, Timing]:
    """``fn(x)`` for each input, in order, with each call timed."""
    outputs, seconds = [], []
    for x in inputs:
        t0 = time.perf_counter()
        outputs.append(fn(x))
        seconds.append(time.perf_counter() - t0)
    return outputs, Timing.of(seconds)
