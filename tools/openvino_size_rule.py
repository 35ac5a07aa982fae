"""Is a float32-only, error-free form of torchvision's resize size rule exact in numpy, onnxruntime and OpenVINO?

Usage: python tools/openvino_size_rule.py [MIN_SIZE MAX_SIZE N]   (default 800 1333 4096: every HxW up to NxN)
Measured 2026-12-07 (docs/openvino.md, "The size rule in float32"). Needs numpy, onnx, onnxruntime, openvino.
Also measures why OpenVINO differs: its float32 division of MIN_SIZE by every side up to 65,535, and the same graph
with eager's scale given as an input (no division in it).

eager: s = min(800/min(h,w), 1333/max(h,w)) in float32; out = floor(float64(x) * float64(s)) for x in (h, w).
f32 form: p = x*s (f32), e = the exact error of that product (Dekker's TwoProduct, Veltkamp split), out = floor(p),
less one where p is an integer and e < 0."""
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
from onnx import TensorProto
from onnx import helper as H

f32 = np.float32


def scale(hf, wf, lo, hi):
    return np.minimum(f32(lo) / np.minimum(hf, wf), f32(hi) / np.maximum(hf, wf))


def split(a):
    """Veltkamp's split of a float32 into a high and a low half whose products are exact."""
    c = f32(4097) * a
    hi = c - (c - a)
    return hi, a - hi


def exact_floor(x, s):
    p = x * s
    xh, xl = split(x)
    sh, sl = split(s)
    e = ((xh * sh - p) + xh * sl + xl * sh) + xl * sl
    fp = np.floor(p)
    return fp - ((fp == p) & (e < 0)).astype(f32)


def wrong(got, ref):
    return int(sum((a != b).sum() for a, b in zip(got, ref)))


def constant(name, v):
    return H.make_node("Constant", [], [name], value=H.make_tensor(name, TensorProto.FLOAT, [], [v]))


def split_nodes(a):
    return [H.make_node("Mul", ["k", a], [a + "_c"]), H.make_node("Sub", [a + "_c", a], [a + "_d"]),
            H.make_node("Sub", [a + "_c", a + "_d"], [a + "_hi"]), H.make_node("Sub", [a, a + "_hi"], [a + "_lo"])]


def side_nodes(x):
    """exact_floor's graph for one side x ("hf" or "wf"); its output is x + "_out"."""
    def n(op, i, o, **attrs):
        return H.make_node(op, i, [x + o], **attrs)
    return split_nodes(x) + [
        n("Mul", [x, "s"], "_p"), n("Mul", [x + "_hi", "s_hi"], "_hh"), n("Sub", [x + "_hh", x + "_p"], "_e1"),
        n("Mul", [x + "_hi", "s_lo"], "_hl"), n("Add", [x + "_e1", x + "_hl"], "_e2"),
        n("Mul", [x + "_lo", "s_hi"], "_lh"), n("Add", [x + "_e2", x + "_lh"], "_e3"),
        n("Mul", [x + "_lo", "s_lo"], "_ll"), n("Add", [x + "_e3", x + "_ll"], "_e"),
        n("Floor", [x + "_p"], "_f"), n("Equal", [x + "_f", x + "_p"], "_int"),
        constant(x + "_zero", 0.0),
        n("Less", [x + "_e", x + "_zero"], "_neg"), n("And", [x + "_int", x + "_neg"], "_fix"),
        n("Cast", [x + "_fix"], "_fixi", to=TensorProto.INT64), n("Cast", [x + "_f"], "_fi", to=TensorProto.INT64),
        n("Sub", [x + "_fi", x + "_fixi"], "_out")]


def size_rule_onnx(lo, hi, path, scale_given=False):
    """The graph of h, w (int64) -> eager's resized sides; with ``scale_given``, s is an input (float32) instead of
    divided out in the graph."""
    nodes = [H.make_node("Cast", ["h"], ["hf"], to=TensorProto.FLOAT), H.make_node("Cast", ["w"], ["wf"], to=TensorProto.FLOAT),
             constant("k", 4097.0)]
    if not scale_given:
        nodes += [constant("cmin", lo), constant("cmax", hi),
                  H.make_node("Min", ["hf", "wf"], ["mn"]), H.make_node("Max", ["hf", "wf"], ["mx"]),
                  H.make_node("Div", ["cmin", "mn"], ["s1"]), H.make_node("Div", ["cmax", "mx"], ["s2"]),
                  H.make_node("Min", ["s1", "s2"], ["s"])]
    nodes += split_nodes("s") + side_nodes("hf") + side_nodes("wf")
    inputs = [H.make_tensor_value_info(v, TensorProto.INT64, ["n"]) for v in ("h", "w")]
    inputs += [H.make_tensor_value_info("s", TensorProto.FLOAT, ["n"])] if scale_given else []
    g = H.make_graph(nodes, "size", inputs, [H.make_tensor_value_info(o, TensorProto.INT64, ["n"]) for o in ("hf_out", "wf_out")])
    model = H.make_model(g, opset_imports=[H.make_opsetid("", 18)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def openvino_division_wrong(lo: float, path: str) -> int:
    """How many of lo / m (float32, m = 1..65,535) OpenVINO's CPU plugin computes unlike IEEE division."""
    m = np.arange(1, 1 << 16, dtype=f32)
    g = H.make_graph([constant("c", lo), H.make_node("Div", ["c", "m"], ["q"])], "div",
                     [H.make_tensor_value_info("m", TensorProto.FLOAT, ["n"])],
                     [H.make_tensor_value_info("q", TensorProto.FLOAT, ["n"])])
    onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 18)], ir_version=8), path)
    got = list(ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({"m": m}).values())[0]
    return int((got != f32(lo) / m).sum())


def main(argv):
    lo = float(argv[0]) if len(argv) > 0 else 800.0
    hi = float(argv[1]) if len(argv) > 1 else 1333.0
    size = int(argv[2]) if len(argv) > 2 else 4096
    h, w = np.meshgrid(np.arange(1, size + 1, dtype=np.int64), np.arange(1, size + 1, dtype=np.int64), indexing="ij")
    h, w = h.ravel(), w.ravel()
    hf, wf = h.astype(f32), w.astype(f32)
    s = scale(hf, wf, lo, hi)
    ref = [np.floor(x.astype(np.float64) * s.astype(np.float64)) for x in (hf, wf)]
    naive = [np.floor(x * s) for x in (hf, wf)]
    print("pairs", h.size, "naive f32 wrong:", wrong(naive, ref))
    with np.errstate(all="raise"):
        print("numpy f32 TwoProduct wrong:", wrong([exact_floor(x, s) for x in (hf, wf)], ref))

    path = str(Path(tempfile.mkdtemp()) / "size_rule.onnx")
    size_rule_onnx(lo, hi, path)
    t = time.time()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"h": h, "w": w})
    print("onnxruntime wrong:", wrong(got, ref), f"{time.time() - t:.1f}s")
    t = time.time()
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = list(compiled({"h": h, "w": w}).values())
    bad = sum((a != b) for a, b in zip(got, ref))
    print("openvino wrong:", int(bad.sum()), f"{time.time() - t:.1f}s",
          "examples:", [(int(h[i]), int(w[i])) for i in np.flatnonzero(bad)[:5]])
    big = np.minimum(h, w) >= 64
    print("openvino wrong with both sides >= 64:", int((bad & big).sum()), "of", int(big.sum()))
    for j in np.flatnonzero(bad & big)[:3]:
        print(int(h[j]), int(w[j]), "eager", [int(r[j]) for r in ref], "openvino", [int(g[j]) for g in got],
              "naive f32", [int(n[j]) for n in naive])

    print(f"openvino {lo:g} / m wrong for m = 1..65535:", openvino_division_wrong(lo, path + ".div.onnx"))
    size_rule_onnx(lo, hi, path, scale_given=True)
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = list(compiled({"h": h, "w": w, "s": s}).values())
    print("openvino wrong with eager's scale given (no division in the graph):", wrong(got, ref))


if __name__ == "__main__":
    main(sys.argv[1:])
