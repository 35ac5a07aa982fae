"""onnx -> ONNX for onnxruntime (and, the same file, for OpenVINO: method ``openvino``): the whole model (resize, heads,
NMS, mask pasting) in one graph, fixed batch, dynamic resolution.

Two exporters, chosen per model by the manifest's ``exporter`` key:

* ``legacy`` (the default): ``torch.onnx.export(dynamo=False)``, the TorchScript-based exporter that torch 2.14 marks
  deprecated; the model is traced within ``trace_safe``.
* ``dynamo``: the program ``torch.export`` makes for the ``export`` method (pt2.py), translated by
  ``torch.onnx.export(dynamo=True)``. Its nodes carry ``metadata_props`` (source stack traces, names of Python
  objects with their memory addresses): they are cleared so that two processes write the same bytes. The exporter's
  onnxscript optimiser runs without one rewrite rule, ``SlicesSplit`` (see ``SLOW_REWRITE_RULES``).
"""
import contextlib
from typing import Iterator, List

import torch

from ..errors import ZooError
from . import pt2
from .patches import FlatOutputs, trace_safe

# onnxscript 0.7's SlicesSplit rule (several Slices of one tensor -> one Split) matches in time quadratic in the graph:
# measured on SSDlite (10,532 nodes), 21 s for one pass of that rule against <0.5 s for each of the other 45, i.e.
# two thirds of the whole ONNX export. It rewrites nothing in the zoo's graphs: the eleven models' files came out
# byte-identical without it. (Onnxruntime's own graph optimiser runs at session creation either way, and the build's
# parity check proves each artifact; docs/torch-export.md.)
SLOW_REWRITE_RULES = ("SlicesSplit",)


@contextlib.contextmanager
def without_slow_rewrite_rules() -> Iterator[List[str]]:
    """While the exporter optimises, its default rewrite rules lack ``SLOW_REWRITE_RULES``; yields the names left out
    (none if this onnxscript has no such rules or keeps them elsewhere)."""
    try:
        from onnxscript import rewriter
    except ImportError:
        yield []
        return
    rules = getattr(rewriter, "_DEFAULT_REWRITE_RULES", None)
    if not isinstance(rules, tuple):
        yield []
        return
    slow = [r for r in rules if getattr(r, "name", None) in SLOW_REWRITE_RULES]
    rewriter._DEFAULT_REWRITE_RULES = tuple(r for r in rules if r not in slow)
    try:
        yield [r.name for r in slow]
    finally:
        rewriter._DEFAULT_REWRITE_RULES = rules


def io_names(keys: List[str], batch: int) -> tuple[list[str], list[str]]:
    suffix = (lambda i: "") if batch == 1 else (lambda i: f"_{i}")
    return [f"image{suffix(i)}" for i in range(batch)], [f"{k}{suffix(i)}" for i in range(batch) for k in keys]


def file_opset(path: str) -> int:
    """The default-domain opset an ONNX file declares."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def export(wrapper: FlatOutputs, example: List[torch.Tensor], path: str, opset: int, nms_groups: int,
           exporter: str = "legacy") -> dict:
    inputs, outputs = io_names(wrapper.keys, len(example))
    if exporter == "dynamo":
        program = pt2.exported_program(wrapper, example, nms_groups)
        with without_slow_rewrite_rules() as left_out:
            torch.onnx.export(program, (example,), path, opset_version=opset, dynamo=True, input_names=inputs,
                              output_names=outputs, external_data=False, optimize=True)
        strip_metadata_props(path)
        name = "torch.onnx.export(dynamo=True) of torch.export.export(strict=False)" + (
            f"; optimised without the rewrite rules {', '.join(left_out)}" if left_out else "")
    else:
        dynamic = {name: {1: "height", 2: "width"} for name in inputs}
        dynamic.update({name: {0: "detections"} for name in outputs})
        with torch.no_grad(), trace_safe(nms_groups):
            torch.onnx.export(wrapper, (example,), path, opset_version=opset, dynamo=False, input_names=inputs,
                              output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True)
        name = "torch.onnx.export(dynamo=False)"
    written = file_opset(path)
    if written != opset:  # the dynamo exporter writes opset 18 at least, whatever it is asked for
        raise ZooError(f"the {exporter} ONNX exporter wrote opset {written}, not the manifest's opset {opset}: set "
                       f"opset = {written} in the manifest's onnx export (or choose the other exporter)")
    return {"exporter": name, "opset": opset, "batch": len(example), "inputs": inputs, "outputs": outputs}


def strip_metadata_props(path: str) -> None:
    """Clear the ``metadata_props`` of every node (in subgraphs and functions too) and of the graph, in place
    (atomically)."""
    import os
    import tempfile

    import onnx

    model = onnx.load(path)

    def clear(graph) -> None:
        for node in graph.node:
            del node.metadata_props[:]
            for attr in node.attribute:
                if attr.HasField("g"):
                    clear(attr.g)
                for sub in attr.graphs:
                    clear(sub)

    clear(model.graph)
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]
    del model.graph.metadata_props[:]
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".strip-")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
