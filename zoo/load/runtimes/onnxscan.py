"""An ONNX graph checked before onnxruntime opens it: nothing in it may name external data.

A tensor stored "externally" names a file that onnxruntime reads: from bytes (as zoo.load hands it the verified
file), relative to the process's working directory, so a hostile graph could return any readable file's bytes as
its outputs. zoo's exports keep every tensor inside the file, so any external reference -- an initializer, a sparse
initializer, a Constant's attribute, in the main graph, a subgraph (If, Loop, Scan) or a local function -- is
refused."""
from __future__ import annotations

from ...errors import IntegrityError


def _external(tensor) -> bool:
    import onnx
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _tensors_of(attribute):
    yield from ([attribute.t] if attribute.HasField("t") else [])
    yield from attribute.tensors
    for sparse in ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(attribute.sparse_tensors):
        yield from (sparse.values, sparse.indices)


def _nodes_tensors(nodes, where: str):
    for node in nodes:
        for attribute in node.attribute:
            for t in _tensors_of(attribute):
                yield f"{where}node {node.name or node.op_type!r} attribute {attribute.name!r}", t
            for i, g in enumerate(([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)):
                yield from _graph_tensors(g, f"{where}subgraph {node.name or node.op_type!r}.{attribute.name}[{i}] ")


def _graph_tensors(graph, where: str = ""):
    for t in graph.initializer:
        yield f"{where}initializer {t.name!r}", t
    for s in graph.sparse_initializer:
        yield f"{where}sparse initializer {s.values.name!r}", s.values
        yield f"{where}sparse initializer {s.values.name!r} indices", s.indices
    yield from _nodes_tensors(graph.node, where)


def check_model(data: bytes, what: str) -> None:
    """IntegrityError if the serialized ModelProto ``data`` names external data anywhere."""
    import onnx
    model = onnx.load_model_from_string(data)
    found = [(place, t) for place, t in _graph_tensors(model.graph)]
    for f in model.functions:
        found += list(_nodes_tensors(f.node, f"function {f.name!r} "))
    for place, t in found:
        if _external(t):
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise IntegrityError(f"{what}: the ONNX graph's {place} names external data ({location!r}), which "
                                 "onnxruntime would read from this machine's files: refused (zoo's ONNX files hold "
                                 "every tensor inside them; rebuild or re-export it without external data)")
