"""The device="cuda" paths, checked on a machine with an NVIDIA GPU (CI has none; the suite tests their error paths):

    python tests/cuda_check.py STORE [--json OUT.json]

STORE holds the models named by --models (default: ssdlite320_mobilenet_v3_large and
fasterrcnn_mobilenet_v3_large_320_fpn) with their scripting and tracing (optionally onnx) artifacts, e.g.
``zoo build ssdlite fasterrcnn_mobilenet_v3_large_320_fpn --method scripting --method tracing --out STORE``. For each
model and two image sizes (both rounding traps) it checks, against the same artifact on the CPU, within the
manifest's parity tolerance:

1. ``zoo.load(..., runtime="pytorch", method=m, device="cuda")`` for m = eager and scripting: outputs are CUDA tensors;
2. ``.cuda()`` / ``.to("cpu")`` of a model loaded on the CPU reopen it in place (torchvision's drop-in idiom);
3. numpy images in give numpy out from a CUDA model;
4. onnxruntime with device="cuda": runs on CUDAExecutionProvider where the installed onnxruntime has it, else the
   clear UnsupportedError;
5. tracing, whose graph keeps the device it was traced on, is refused on CUDA with the clear error.

Prints one line per check and a JSON summary; exits 1 if any check failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

import numpy as np
import torch

import zoo
from zoo.errors import UnsupportedError
from zoo.core.manifest import resolve
from zoo.core.parity import Tolerance, compare

LIGHT = ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn"]
SIZES = [(375, 500), (311, 400)]


def images() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    low = [torch.rand(1, 3, 6, 8, generator=gen) for _ in SIZES]
    return [torch.nn.functional.interpolate(x, size=s, mode="bilinear")[0] for x, s in zip(low, SIZES)]


def cpu_outputs(outputs: list[dict]) -> list[dict]:
    return [{k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in o.items()} for o in outputs]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("store")
    p.add_argument("--json", default=None)
    p.add_argument("--models", nargs="+", default=LIGHT)
    a = p.parse_args()
    assert torch.cuda.is_available(), "no CUDA device: run this on a machine with a GPU"
    pics = images()
    results: dict[str, dict] = {}
    for name in a.models:
        check_model(a.store, name, pics, results)
    summary = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "checks": results}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "checks"}))
    return 0 if all(r["ok"] for r in results.values()) else 1


def check_model(store: str, model: str, pics: list, results: dict) -> None:
    """The checks above for one model, into ``results``."""
    manifest = resolve(model)
    tol = Tolerance.from_dict(manifest.export("scripting").tolerance)

    def check(name: str, fn) -> None:
        name = f"{model}: {name}"
        t0 = time.perf_counter()
        try:
            detail = fn() or {}
            results[name] = {"ok": True, **detail}
        except Exception as e:  # a check's failure is reported, the others still run
            results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:600],
                             "trace": "".join(traceback.format_exception(e))[-4000:]}
        results[name]["seconds"] = round(time.perf_counter() - t0, 2)
        label = "FAIL" if not results[name]["ok"] else "skip" if "skipped" in results[name] else "ok  "
        print(f"{label} {name}: " + json.dumps(results[name]), flush=True)

    def on_cuda(method: str):
        def run():
            cpu = zoo.load(model, runtime="pytorch", method=method, source=store)
            gpu = zoo.load(model, runtime="pytorch", method=method, device="cuda", source=store)
            want, got = cpu(pics), gpu(pics)
            devices = {v.device.type for o in got for v in o.values()}
            assert devices == {"cuda"}, devices
            report = compare(want, cpu_outputs(got), tol)
            assert report.ok, report.failures
            return {"detections": [len(o["scores"]) for o in want], "parity": report.summary()}
        return run

    def tf32_effect():
        """What zoo's full_precision() prevents: torchvision's model on CUDA with cuDNN's default TF32 convolutions."""
        from zoo.load import architecture as models
        from zoo.load.runtimes.torchscript import full_precision
        weights = f"{store}/models/{model}/weights.safetensors"
        cpu_model = models.stored_model(manifest, weights).eval()
        gpu_model = models.stored_model(manifest, weights, device="cuda").eval()
        with torch.no_grad():
            want = cpu_model(pics)
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=True):
                tf32 = cpu_outputs(gpu_model([p.cuda() for p in pics]))
            with full_precision(torch.device("cuda")):
                ieee = cpu_outputs(gpu_model([p.cuda() for p in pics]))
        return {"tf32": compare(want, tf32, tol).summary(), "ieee": compare(want, ieee, tol).summary()}

    check("TF32 effect (measured, not gated)", tf32_effect)
    measured = results[f"{model}: TF32 effect (measured, not gated)"]
    measured["ok"] = "error" not in measured
    check("eager on cuda", on_cuda("eager"))
    check("scripting on cuda", on_cuda("scripting"))

    def reopen():
        detector = zoo.load(model, runtime="pytorch", method="scripting", source=store)
        want = detector(pics)
        assert detector.cuda() is detector and detector.device == "cuda"
        got = detector(pics)
        assert {o["boxes"].device.type for o in got} == {"cuda"}
        numpy_out = detector([im.numpy() for im in pics])
        assert all(isinstance(o["boxes"], np.ndarray) for o in numpy_out)
        back = detector.to("cpu")(pics)
        assert {o["boxes"].device.type for o in back} == {"cpu"}
        report = compare(want, cpu_outputs(got), tol)
        assert report.ok, report.failures
        return {"parity": report.summary()}

    check(".cuda() and .to('cpu') reopen in place", reopen)

    def onnx_cuda():
        import onnxruntime as ort
        available = ort.get_available_providers()
        has_onnx = any(x["method"] == "onnx" for x in
                       json.load(open(f"{store}/index.json"))["models"][model]["artifacts"])
        if not has_onnx:
            return {"skipped": "the store has no onnx artifact", "providers": available}
        if "CUDAExecutionProvider" in available:
            cpu = zoo.load(model, runtime="onnxruntime", source=store)
            gpu = zoo.load(model, runtime="onnxruntime", device="cuda", source=store)
            report = compare(cpu(pics), gpu(pics), Tolerance.from_dict(manifest.export("onnx").tolerance))
            assert report.ok, report.failures
            return {"providers": available, "parity": report.summary()}
        try:
            zoo.load(model, runtime="onnxruntime", device="cuda", source=store)
        except UnsupportedError as e:
            assert "CUDAExecutionProvider" in str(e) and "onnxruntime-gpu" in str(e), e
            return {"providers": available, "refused": str(e)[:200]}
        raise AssertionError("device='cuda' without CUDAExecutionProvider was not refused")

    check("onnxruntime device='cuda'", onnx_cuda)

    def tracing_refused():
        try:
            zoo.load(model, runtime="pytorch", method="tracing", device="cuda", source=store)
        except UnsupportedError as e:
            assert "cpu" in str(e), e
            return {"refused": str(e)[:200]}
        except Exception as e:  # the store may not hold a tracing artifact: then the manifest's refusal is what counts
            raise AssertionError(f"expected UnsupportedError, got {type(e).__name__}: {e}")
        raise AssertionError("tracing on cuda was not refused")

    check("tracing refused on cuda", tracing_refused)


if __name__ == "__main__":
    sys.exit(main())
