"""aoti -> an AOTInductor package (``.pt2`` holding compiled C++ kernels): the ``export`` method's program, compiled
ahead of time by ``torch._inductor.aoti_compile_and_package``. Loaded by ``aoti_load_package`` in Python, or by
``torch::inductor::AOTIModelPackageLoader`` in C++ without Python.

Compiling takes minutes per model (measured: docs/torch-export.md), and a compiled package can run and still be wrong
(Faster R-CNN MobileNet: 0-1 detections where eager gives 100): the build's parity gate decides what ships."""
import time
from typing import List

import torch

from . import pt2
from .patches import FlatOutputs, export_safe


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, nms_groups: int) -> dict:
    program = pt2.without_stack_traces(pt2.exported_program(wrapper, example, nms_groups))
    start = time.perf_counter()
    # Inductor re-traces the program with the operators' fake kernels: torchvision's nms one must be the export_safe
    # one here too (measured: compiled without it, a class with 0 or 1 boxes after NMS aborted the call).
    with torch.no_grad(), export_safe(nms_groups):
        torch._inductor.aoti_compile_and_package(program, package_path=path)
    return {"exporter": "torch._inductor.aoti_compile_and_package of torch.export.export(strict=False)",
            "batch": len(example), "image_sides": [pt2.MIN_SIDE, pt2.MAX_SIDE],
            "compile_seconds": round(time.perf_counter() - start)}
