"""What a long step is doing, with its elapsed time, on a progress bar: no silent wait over a few seconds.

``with Stages(bar) as staged: staged.set_postfix_str("ssdlite onnx: exporting")`` shows "ssdlite onnx: exporting 12s"
and keeps the seconds ticking (a daemon thread refreshes the bar every ``every`` seconds) until the next stage or the
end. A Stages stands in for the bar it wraps (update, set_postfix_str, the rest passed through)."""
from __future__ import annotations

import threading
import time


class Stages:
    def __init__(self, bar, every: float = 2.0):
        self.bar, self.every = bar, every
        self.text, self.t0 = "", time.perf_counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        with self._lock:
            self.text, self.t0 = text, time.perf_counter()
        self._show()

    def __getattr__(self, name):  # update, close, n, total, ...: the bar's own
        return getattr(self.bar, name)

    def _show(self) -> None:
        with self._lock:
            text, elapsed = self.text, time.perf_counter() - self.t0
        if text:
            self.bar.set_postfix_str(f"{text} {elapsed:.0f}s", refresh=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._show()

    def __enter__(self) -> "Stages":
        if not getattr(self.bar, "disable", False):
            self._thread = threading.Thread(target=self._tick, name="zoo-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
