"""A long stage keeps saying what it does and for how long (zoo/progress.py), with a fake bar."""
import time

from zoo.core.progress import Stages


class Bar:
    disable = False

    def __init__(self):
        self.shown, self.n = [], 0

    def set_postfix_str(self, text, refresh=True):
        self.shown.append(text)

    def update(self, n=1):
        self.n += n


def test_the_elapsed_seconds_keep_ticking_until_the_next_stage():
    bar = Bar()
    with Stages(bar, every=0.05) as staged:
        staged.set_postfix_str("ssdlite onnx: exporting")
        time.sleep(1.3)
        staged.update(1)  # the bar's own methods pass through
        staged.set_postfix_str("ssdlite onnx: writing")
    after = len(bar.shown)
    time.sleep(0.2)
    assert len(bar.shown) == after  # the ticker stopped with the block
    exporting = [t for t in bar.shown if t.startswith("ssdlite onnx: exporting ")]
    assert len(exporting) >= 5 and exporting[0] == "ssdlite onnx: exporting 0s" and exporting[-1] == "ssdlite onnx: exporting 1s"
    assert bar.shown[-1] == "ssdlite onnx: writing 0s" and bar.n == 1
