"""runtime='tensorrt' (methods tensorrt, tensorrt-fp16: onnxruntime-gpu's TensorRT provider on an NVIDIA GPU). This
machine has no GPU and an onnxruntime without that provider, so what is tested here is that every way in refuses
clearly, before anything is read, and that a build asked for it fails that artifact alone; the GPU path itself is
untested (docs/gpu.md)."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import LIGHT, manifests_with
from test_untrusted import _external_model
from zoo.core.manifest import METHODS, resolve
from zoo.errors import UnsupportedError
from zoo.load.runtimes import open_backend
from zoo.load.runtimes.tensorrt import PROVIDER, TensorRtBackend, session_providers

SSD = LIGHT[0]
NO_TENSORRT = PROVIDER not in ort.get_available_providers()


def test_both_methods_are_onnx_files_for_the_tensorrt_runtime():
    assert METHODS["tensorrt"] == METHODS["tensorrt-fp16"] == ("tensorrt", "onnx")


def test_tensorrt_fp16_is_gated_on_accuracy_recording_the_gpu(tmp_path):
    """fp16 cannot hold detection-by-detection parity: its entry takes agreement bounds (required), and what the gate
    records names the GPU rather than CPU features a load elsewhere could miss."""
    from zoo.build import accuracy
    from zoo.core.manifest import EXACT_OF, Export, parse
    from zoo.errors import ManifestError
    assert EXACT_OF["tensorrt-fp16"] == "tensorrt"
    entry = ('[[export]]\nmethod = "tensorrt-fp16"\nruntime = "tensorrt"\nformat = "onnx"\nopset = 18\nbatch = 1\n'
             'resolution = "dynamic"\ndevices = ["cuda"]\n')
    text = Path(resolve(SSD).path).read_text()
    path = tmp_path / f"{SSD}.toml"
    path.write_text(text + "\n" + entry)
    with pytest.raises(ManifestError, match=r"min_agreement_ap50.*missing"):
        parse(path)
    path.write_text(text + "\n" + entry + "min_agreement_ap50 = 0.95\n")
    assert parse(path).export("tensorrt-fp16").approximate
    spec = Export("tensorrt-fp16", "tensorrt", "onnx", 1, ("cuda",), {}, 18, accuracy={"min_agreement_ap50": 0.95})
    det = {"boxes": np.array([[10.0, 10, 50, 60]]), "labels": np.array([1]), "scores": np.array([0.9])}
    got = accuracy.check(spec, [det], [det], gpu="NVIDIA H200")
    assert got["gpu"] == "NVIDIA H200" and got["isa"] == [] and "machine" not in got and got["agreement"]["ap50"] == 1.0


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_tensorrt_on_a_device_that_is_not_cuda_is_refused_naming_what_to_use(device):
    with pytest.raises(UnsupportedError, match=rf"runtime='tensorrt' runs on an NVIDIA GPU, not '{device}'.*"
                                               r"device='cuda'.*runtime='onnxruntime' or 'openvino'"):
        session_providers(device, fp16=False)


@pytest.mark.skipif(not NO_TENSORRT, reason="this onnxruntime has the TensorRT provider, so the refusal checked here does not "
                    "apply; nothing checks the GPU path in its place (untested: docs/gpu.md)")
@pytest.mark.parametrize("method", ["tensorrt", "tensorrt-fp16"])
def test_without_the_tensorrt_provider_opening_is_refused_before_the_file_is_read(tmp_path, method):
    missing = tmp_path / "not-read.onnx"  # never opened: the refusal comes first
    with pytest.raises(UnsupportedError, match=rf"needs onnxruntime's {PROVIDER}, which this onnxruntime "
                                               r".* does not have \(available: .*CPUExecutionProvider.*\): "
                                               r"pip install onnxruntime-gpu tensorrt") as e:
        open_backend(resolve(SSD), method, "tensorrt", str(missing), 1, "cuda")
    assert "Traceback" not in str(e.value) and not missing.exists()


def test_an_external_data_graph_is_refused_before_tensorrt_sees_it(monkeypatch, tmp_path):
    """Where the provider exists, the bytes are scanned first, as for onnxruntime and OpenVINO."""
    from zoo.errors import IntegrityError
    module = sys.modules[TensorRtBackend.__module__]  # (zoo.load is also the function: no dotted path to it)
    monkeypatch.setattr(module, "session_providers", lambda device, fp16: ["CPUExecutionProvider"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"API_KEY=hunter2!")
    with pytest.raises(IntegrityError, match=r"names external data \('\.env'\).*refused"):
        TensorRtBackend(_external_model("initializer", ".env"), 1, "cuda")


@pytest.mark.slow
def test_a_tensorrt_build_here_fails_that_artifact_alone_and_says_why(light_store, tmp_path):
    """A manifest listing tensorrt, built on a machine without it: the artifact fails with the refusal's words, every
    artifact the store had stays listed and byte-identical."""
    from zoo.build.pipeline import build
    onnx_entry = '[[export]]\nmethod = "onnx"\n'
    tensorrt_entry = ('[[export]]  # a user entry: the ONNX file for TensorRT\nmethod = "tensorrt"\nruntime = "tensorrt"\n'
                      'format = "onnx"\nopset = 18\nexporter = "legacy"\nbatch = 1\nresolution = "dynamic"\n'
                      'devices = ["cuda"]\ntolerance = { min_matched = 0.95, box_atol = 1.0, score_atol = 0.01 }\n\n')
    manifests = manifests_with(tmp_path, SSD, (onnx_entry, tensorrt_entry + onnx_entry))
    store = tmp_path / "store"
    shutil.copytree(light_store, store)
    before = json.loads((store / "index.json").read_text())["models"][SSD]["artifacts"]
    result = build([SSD], store, methods=["tensorrt"], progress=False, manifest_dir=str(manifests))
    line = " ".join(result.lines)
    assert result.failed == [f"{SSD}/tensorrt"], line
    assert "runtime='tensorrt'" in line and ("runs on an NVIDIA GPU" in line or PROVIDER in line), line
    after = json.loads((store / "index.json").read_text())["models"][SSD]["artifacts"]
    assert [a["files"] for a in after] == [a["files"] for a in before]
    assert not (store / "models" / SSD / "tensorrt").exists()
