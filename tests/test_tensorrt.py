"""runtime='tensorrt' (methods tensorrt, tensorrt-fp16: onnxruntime-gpu's TensorRT provider on an NVIDIA GPU). This
machine has no GPU and an onnxruntime without that provider, so what is tested here is that every way in refuses
clearly, before anything is read, and that a build asked for it fails that artifact alone; the GPU path itself is
untested (docs/gpu.md)."""
import json
import shutil
import sys

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
