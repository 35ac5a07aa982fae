"""GFLOP/s of the ResNet-50 FPN backbone in each runtime and precision, against this machine's measured peak.

Usage: python tools/backbone_gflops.py [--size 800x1088] [--threads 2] [--repeat 10]
Measured 2026-12-08 (docs/performance.md, "How far from the machine's limit"). Needs torch, torchvision, onnx,
onnxruntime, openvino and gcc (for tools/peak_flops.c). The backbone is fasterrcnn_resnet50_fpn's (body + FPN, seeded
weights) at the size the detectors run a 480x640 image at (resized to 800x1067, padded to 800x1088). FLOPs are counted
by torch.utils.flop_counter (a multiply-add is 2); the peak is tools/peak_flops.c's, on every core at once."""
import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

TOOLS = Path(__file__).resolve().parent


def peaks(cores: int, workdir: Path) -> dict:
    """Measured per-machine peak (FLOP/s or OP/s) per precision, every core running the kernel at once; and the clock."""
    exe = workdir / "peak_flops"
    subprocess.run(["gcc", "-O2", "-mavx512f", "-mavx512bf16", "-mavx512vnni", "-mfma", "-o", str(exe),
                    str(TOOLS / "peak_flops.c")], check=True)
    out = {}
    for what, n in (("clock", 2_000_000_000), ("f32", 1_200_000_000), ("bf16", 1_200_000_000), ("int8", 1_200_000_000)):
        procs = [subprocess.Popen([str(exe), what, str(n)], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
        rates = [float(p.communicate()[0]) for p in procs]
        out[what] = statistics.mean(rates) if what == "clock" else sum(rates)
    return out


def timed(fn, repeat: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Calibration:
    """onnxruntime's CalibrationDataReader over a few of the package's photos at the backbone's input size."""

    def __init__(self, name: str, images: list):
        self.items = iter([{name: im} for im in images])

    def get_next(self):
        return next(self.items, None)


def fold_batch_norms(module: torch.nn.Module) -> torch.nn.Module:
    """Each of ResNet's frozen batch norms folded into the convolution before it (as the zoo's TorchScript artifacts
    are, and as an ONNX exporter's constant folding does for BatchNormalization but not for torchvision's
    FrozenBatchNorm2d): the graph every runtime gets is convolutions, ReLUs, adds and the FPN's upsampling."""
    from torchvision.ops.misc import FrozenBatchNorm2d
    pairs = [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1")]
    for parent in module.modules():
        for conv_name, bn_name in pairs:
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, FrozenBatchNorm2d):
                scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
                folded = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                         conv.padding, conv.dilation, conv.groups, bias=True)
                with torch.no_grad():
                    folded.weight.copy_(conv.weight * scale[:, None, None, None])
                    folded.bias.copy_(bn.bias - bn.running_mean * scale + (conv.bias * scale if conv.bias is not None else 0))
                setattr(parent, conv_name, folded)
                setattr(parent, bn_name, torch.nn.Identity())
    return module


def photos(h: int, w: int) -> list:
    """The package's photos as the backbone's input: resized to h x w (zoo bench's sample_image), normalized as
    torchvision's detectors normalize, batch of one."""
    from zoo.ops.bench import PHOTOS, sample_image
    mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
    std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
    return [np.ascontiguousarray(((sample_image((h, w), photo) - mean) / std)[None]) for photo in PHOTOS]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="800x1088")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    h, w = map(int, args.size.split("x"))
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    peak = peaks(args.threads, work)
    print(f"clock {peak['clock']:.2f} GHz; peak on {args.threads} cores: f32 {peak['f32'] / 1e9:.0f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s, int8 {peak['int8'] / 1e9:.0f} GOP/s", flush=True)

    torch.manual_seed(0)
    backbone = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).backbone.eval()
    images = photos(h, w)
    x = torch.from_numpy(images[0])
    with torch.no_grad():
        before = backbone(x)
        backbone = fold_batch_norms(backbone)
        after = backbone(x)
    drift = max(float((before[k] - after[k]).abs().max() / before[k].abs().max()) for k in before)
    assert drift < 1e-4, f"folding the batch norms moved the features by {drift:.2e} of their range"
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        backbone(x)
    flops = counter.get_total_flops()
    print(f"backbone at {h}x{w}: {flops / 1e9:.1f} GFLOP", flush=True)

    rows = []

    def row(runtime, precision, seconds):
        rate = flops / seconds
        rows.append((runtime, precision, seconds, rate / 1e9, 100 * rate / peak[precision]))
        print(f"| {runtime} | {precision} | {seconds:.3f} | {rate / 1e9:.0f} | {100 * rate / peak[precision]:.0f}% |",
              flush=True)

    with torch.no_grad():
        row("torch eager", "f32", timed(lambda: backbone(x), args.repeat))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            row("torch eager (autocast)", "bf16", timed(lambda: backbone(x), args.repeat))
        frozen = torch.jit.freeze(torch.jit.trace(backbone.to(memory_format=torch.channels_last), x, strict=False).eval())
        xl = x.contiguous(memory_format=torch.channels_last)
        row("TorchScript (frozen, channels_last)", "f32", timed(lambda: frozen(xl), args.repeat))
        backbone = backbone.to(memory_format=torch.contiguous_format)

    import onnxruntime as ort
    import openvino as ov
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    onnx_path, int8_path = work / "backbone.onnx", work / "backbone-int8.onnx"
    torch.onnx.export(backbone, (x,), str(onnx_path), input_names=["x"], dynamo=False, opset_version=17)
    quant_pre_process(str(onnx_path), str(work / "backbone-pre.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    row("onnxruntime", "f32", timed(lambda: session.run(None, {"x": images[0]}), args.repeat))
    core = ov.Core()
    for precision in ("f32", "bf16"):
        compiled = core.compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                              "INFERENCE_NUM_THREADS": args.threads})
        row("OpenVINO", precision, timed(lambda: compiled({"x": images[0]}), args.repeat))
    quantize_static(str(work / "backbone-pre.onnx"), str(int8_path), Calibration("x", images), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    session = ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])
    row("onnxruntime (QDQ)", "int8", timed(lambda: session.run(None, {"x": images[0]}), args.repeat))
    compiled = core.compile_model(str(int8_path), "CPU", {"INFERENCE_NUM_THREADS": args.threads})
    row("OpenVINO (the same QDQ file)", "int8", timed(lambda: compiled({"x": images[0]}), args.repeat))


if __name__ == "__main__":
    main()
