"""Child-process entry point: ``python -m zoo.export.run MANIFEST WEIGHTS METHOD OUT [CALIBRATION.npz]`` prints the
settings as JSON."""
import json
import os
import sys
import threading
import time


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Exit as soon as the build that started this export (process ``parent``) is gone, killed, say, by the OOM
    killer: nobody would read the artifact, and an AOTInductor compile would go on for minutes."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(3)
    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


if __name__ == "__main__" and os.environ.get("ZOO_EXPORT_PARENT", "").isdigit():
    exit_with_parent(int(os.environ["ZOO_EXPORT_PARENT"]))  # before the imports below, which take seconds

import torch  # noqa: E402

from ..load import architecture
from ..core.manifest import ONNX_METHODS, parse
from . import aoti, common, int8, onnx, pt2, scripting, tracing
from .patches import EXPORT_SAFE, FLOAT64_RESIZE, TRACE_SAFE, nms_groups


def main(manifest_path: str, weights_file: str, method: str, out: str, calibration: str | None = None) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    manifest = parse(manifest_path)
    spec = manifest.export(method)
    wrapper = common.exportable(architecture.stored_model(manifest, weights_file), manifest, spec.transform)
    example = common.example_images(manifest, spec.batch or 1)
    settings: dict = {}
    with common.recorded_warnings(settings):
        groups = nms_groups(wrapper.model, len(manifest.categories))
        if method == "tracing":
            settings.update(tracing.export(wrapper, example, out, groups))
        elif method == "export":
            settings.update(pt2.export(wrapper, example, out, groups))
        elif method == "aoti":
            settings.update(aoti.export(wrapper, example, out, groups))
        elif method == "scripting":
            settings.update(scripting.export(wrapper, example, out))
        elif method in int8.QUANTIZERS:  # onnx-int8, openvino-int8: the onnx method's file, quantized
            settings.update(int8.export(wrapper, example, out, spec, groups, calibration))
        elif method in ONNX_METHODS:  # onnx, openvino(-bf16): the same ONNX file, each run by its own runtime
            settings.update(onnx.export(wrapper, example, out, spec.opset, groups, spec.exporter))
        else:
            raise SystemExit(f"zoo.export.run: no exporter for method {method!r}")
    if method != "scripting":
        settings["nms_groups"] = groups
    settings["example_size"] = list(example[0].shape[-2:])
    settings["transform"] = getattr(wrapper.model.transform, "export_name", "ExactResizeTransform (eager float64 resize)") + (
        "" if method == "scripting" else f"; {TRACE_SAFE}") + (f"; {EXPORT_SAFE}" if spec.symbolic else "") + (
        f"; {FLOAT64_RESIZE}" if spec.transform == "float64" else "")
    return settings


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6]), sort_keys=True))
