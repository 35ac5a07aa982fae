"""export -> a torch.export ``.pt2`` archive (ExportedProgram): the whole model, fixed batch, dynamic resolution.

``torch.export.export(strict=False)`` runs the model once on the example with symbolic image sizes; ``export_safe``
(patches.py) removes what would fix those sizes or fail on data-dependent ones. The batch is fixed: the model takes a
list of images, and a list's length is part of an exported program's input spec."""
from typing import List

import torch

from .patches import FlatOutputs, export_safe

# The image sizes an artifact accepts (pixels per side); outside them the program refuses the input.
MIN_SIDE, MAX_SIDE = 2, 8192


def exported_program(wrapper: FlatOutputs, example: List[torch.Tensor], nms_groups: int) -> torch.export.ExportedProgram:
    """The wrapper (made with ``common.exportable(..., "symbolic")``) exported with dynamic image sizes."""
    height = torch.export.Dim("height", min=MIN_SIDE, max=MAX_SIDE)
    width = torch.export.Dim("width", min=MIN_SIDE, max=MAX_SIDE)
    dynamic = ([{1: height, 2: width} for _ in example],)
    with torch.no_grad():
        # One eager call first: the RoI poolers infer their feature-map scales on their first call, from float() of a
        # feature size; under torch.export that call would fix the example's padded size (measured: the Faster R-CNN
        # program then refused every other size). The scales are powers of two, the same for every size, and eager
        # caches them the same way.
        wrapper(example)
    with torch.no_grad(), export_safe(nms_groups):
        return torch.export.export(wrapper, (example,), dynamic_shapes=dynamic, strict=False)


def without_stack_traces(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    """Drop each node's ``stack_trace`` (in place): it names source files by absolute path (the checkout's, the
    interpreter's), so the saved bytes would depend on where the zoo and torchvision are installed."""
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)
    return program


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, nms_groups: int) -> dict:
    torch.export.save(without_stack_traces(exported_program(wrapper, example, nms_groups)), path)
    return {"exporter": "torch.export.export(strict=False)", "batch": len(example),
            "image_sides": [MIN_SIDE, MAX_SIDE]}
