import re
from pathlib import Path

import pytest

from zoo.core import manifest as mf
from zoo.errors import ManifestError, UnknownModelError, UnsupportedError

REPO = Path(__file__).resolve().parent.parent
TWELVE = {"fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn",
          "fasterrcnn_mobilenet_v3_large_320_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2",
          "keypointrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "fcos_resnet50_fpn",
          "ssd300_vgg16", "ssdlite320_mobilenet_v3_large"}
ALIASES = {"mask_rcnn": "maskrcnn_resnet50_fpn", "faster_rcnn": "fasterrcnn_resnet50_fpn",
           "keypoint_rcnn": "keypointrcnn_resnet50_fpn", "retinanet": "retinanet_resnet50_fpn",
           "fcos": "fcos_resnet50_fpn", "ssd": "ssd300_vgg16", "ssdlite": "ssdlite320_mobilenet_v3_large"}


def test_all_twelve_models_and_aliases():
    found = mf.all_manifests()
    assert set(found) == TWELVE
    for alias, name in ALIASES.items():
        assert mf.resolve(alias).name == name
    for m in found.values():
        listed = {e.method for e in m.exports} | {u.method for u in m.unsupported}
        assert {"tracing", "scripting", "onnx"} <= listed <= set(mf.METHODS), m.name
        if m.exports:
            assert m.export("tracing").batch == 1 and m.export("scripting").batch is None


def test_manifests_agree_with_torchvision_weight_enums():
    from torchvision.models import get_model_weights
    for m in mf.all_manifests().values():
        w = get_model_weights(m.name).DEFAULT
        assert m.weights["enum"] == str(w)
        assert m.weights["url"] == w.url
        assert w.url.rsplit("-", 1)[1].startswith(m.weights["sha256"])
        assert m.weights["categories"] == w.meta["categories"]
        assert m.weights["metrics"] == w.meta["_metrics"]["COCO-val2017"]
        assert m.weights["num_params"] == w.meta["num_params"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match=r"did you mean 'mask_rcnn'"):
        mf.resolve("mask_rnn")
    with pytest.raises(UnknownModelError, match="known: "):
        mf.resolve("yolo")


def test_unsupported_combination_lists_supported_ones():
    m = mf.resolve("ssd")
    with pytest.raises(UnsupportedError) as e:
        m.export("caffe2")
    assert "supported: runtime='pytorch' method='tracing'" in str(e.value)
    assert "runtime='onnxruntime' method='onnx'" in str(e.value)


def _broken(tmp_path, edit):
    src = REPO / "manifests" / "ssd300_vgg16.toml"
    d = tmp_path / "m"
    d.mkdir()
    text = edit(src.read_text())
    (d / "ssd300_vgg16.toml").write_text(text)
    return d / "ssd300_vgg16.toml"


INT8 = """
[[export]]
method = "onnx-int8"
runtime = "onnxruntime"
format = "onnx"
opset = 18
batch = 1
resolution = "dynamic"
devices = ["cpu"]
min_agreement_ap50 = 0.95
"""


def test_an_approximate_method_states_its_accuracy_bounds_and_needs_no_tolerance(tmp_path):
    m = mf.parse(_broken(tmp_path, lambda t: t + INT8 + "min_agreement_ap = 0.8\n"))
    e = m.export("onnx-int8")
    assert (e.approximate, e.accuracy, e.tolerance, e.runtime) == (True, {"min_agreement_ap50": 0.95,
                                                                          "min_agreement_ap": 0.8}, {}, "onnxruntime")
    assert not m.export("onnx").approximate and m.export("onnx").accuracy == {}
    assert "onnx-int8" in mf.ONNX_METHODS and set(mf.APPROXIMATE_METHODS) <= set(mf.METHODS)


@pytest.mark.parametrize("edit, key, expected", [
    (lambda t: t.replace('builder = "torchvision.models.detection.ssd300_vgg16"\n', ""), "builder", "missing"),
    (lambda t: t.replace("opset = 18", "opset = 11"), "export[2].opset", "16 or more"),
    (lambda t: t.replace('method = "onnx"', 'method = "caffe2"'), "export[2].method", "one of tracing, scripting, onnx"),
    (lambda t: t.replace('batch = "dynamic"', "batch = 0"), "export[1].batch", "positive integer"),
    (lambda t: t.replace("min_matched = 0.95, box_atol", "min_matched = \"high\", box_atol", 1),
     "export[0].tolerance.min_matched", "non-negative number"),
    (lambda t: "colour = \"blue\"\n" + t, "colour", "no such key"),
    (lambda t: t.replace("sizes = [[375, 500]", "sizes = [[375]", 1), "parity.sizes.0", "[height, width]"),
    (lambda t: t.replace('runtime = "onnxruntime"', 'runtime = "pytorch"'), "export[2].runtime", "'onnxruntime' for method onnx"),
    (lambda t: t.replace("batch = 1\n", 'batch = "dynamic"\n', 1), "export[0].batch", "tracing fixes the batch size"),
    (lambda t: t.replace('exporter = "dynamo"', 'exporter = "torchscript"'), "export[2].exporter", '"legacy"'),
    (lambda t: t.replace("batch = 1\n", 'batch = 1\nexporter = "dynamo"\n', 1), "export[0].exporter",
     "only the ONNX methods (onnx, openvino, tensorrt, tensorrt-fp16, onnx-int8, openvino-int8, openvino-bf16)"),
    (lambda t: t + INT8.replace("min_agreement_ap50 = 0.95", ""), "export[6].min_agreement_ap50", "missing"),
    (lambda t: t + INT8.replace("0.95", "95"), "export[6].min_agreement_ap50", "a number in [0, 1]"),
    (lambda t: t + INT8.replace("0.95", '"high"'), "export[6].min_agreement_ap50", "the least agreement AP"),
    (lambda t: t + INT8 + "min_agreement_ap = -0.1\n", "export[6].min_agreement_ap", "a number in [0, 1]"),
    (lambda t: t.replace("batch = 1\n", "batch = 1\nmin_agreement_ap50 = 0.9\n", 1), "export[0].min_agreement_ap50",
     "method tracing is exact and gated by its tolerance table"),
    (lambda t: t.replace("[weights]", "[weights\n"), None, "not valid TOML"),
    (lambda t: t.replace("[parity]", "[eval]\nmap_tolerance = -1\n\n[parity]"), "eval.map_tolerance", "non-negative"),
    (lambda t: t.replace("torchvision.models.detection.ssd300_vgg16", "ssd300_vgg16:"), "builder", "package.module:function"),
    (lambda t: t.replace("[weights]", "builder_args = 4\n\n[weights]"), "builder_args", "keyword arguments"),
    (lambda t: re.sub(r'\nsha256 = "\w+"', "", t), "weights.sha256", "missing"),
])
def test_bad_manifest_names_file_key_and_expectation(tmp_path, edit, key, expected):
    path = _broken(tmp_path, edit)
    with pytest.raises(ManifestError) as e:
        mf.parse(path)
    msg = str(e.value)
    assert str(path) in msg and expected in msg
    if key:
        assert f"key '{key}'" in msg


def test_own_model_keys_and_the_file_name_rule(tmp_path):
    """A manifest of your own: module:function builder, builder_args, [eval], no official weights; any file name when
    given as a file, the model's name in a manifest directory."""
    def own(t):
        t = t.replace('builder = "torchvision.models.detection.ssd300_vgg16"',
                      'builder = "mypkg.det:build"\nbuilder_args = { num_classes = 3 }')
        t = t[:t.index("[weights]")] + '[weights]\ncategories = ["__background__", "a", "b"]\n' + t[t.index("[input]"):]
        return t.replace("[parity]", "[eval]\nmap_tolerance = 0.5\n\n[parity]")
    path = _broken(tmp_path, own)
    m = mf.parse(path.rename(path.with_name("anything.toml")))
    assert (m.builder, m.builder_args, m.map_tolerance, m.categories) == ("mypkg.det:build", {"num_classes": 3}, 0.5,
                                                                          ["__background__", "a", "b"])
    with pytest.raises(ManifestError, match=r"anything.toml: key 'name': expected the file's stem 'anything'"):
        mf.all_manifests(path.parent)


def test_bad_manifest_in_a_directory_fails_loading(tmp_path):
    path = _broken(tmp_path, lambda t: t.replace('license = "BSD-3-Clause"', "license = 3"))
    with pytest.raises(ManifestError, match=r"key 'weights.license': expected an SPDX license name, got 3"):
        mf.all_manifests(path.parent)


def test_readme_support_table_is_generated_from_manifests():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- support-table:start -->\n(.*?)\n<!-- support-table:end -->", readme, re.S)
    assert block, "README.md lacks the support-table markers"
    assert block.group(1).strip() == mf.support_markdown().strip(), \
        "README support table drifted from manifests/: regenerate it with `zoo list --markdown`"


def test_import_zoo_does_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, zoo, zoo.core.manifest, zoo.core.store, zoo.core.parity, zoo.cli, zoo.load.loader; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_new_manifest_reads_the_outputs_from_the_model_and_says_what_it_wrote(tmp_path):
    """A Mask R-CNN builder gets masks, a Keypoint R-CNN keypoints and keypoints_scores, a Faster R-CNN neither."""
    from conftest import run_zoo
    for builder, outputs in [("maskrcnn_resnet50_fpn", ["masks"]),
                             ("keypointrcnn_resnet50_fpn", ["keypoints", "keypoints_scores"]),
                             ("fasterrcnn_mobilenet_v3_large_320_fpn", [])]:
        out = tmp_path / f"{builder}.toml"
        proc = run_zoo("new-manifest", "mine", "--builder", f"torchvision.models.detection.{builder}",
                       "--num-classes", "3", "--out", out)
        expected = ["boxes", "labels", "scores", *outputs]
        assert list(mf.parse(out).outputs) == expected
        assert f"outputs = [{', '.join(expected)}] (read from the model" in proc.stdout, proc.stdout


def test_a_build_whose_manifest_leaves_out_masks_is_refused_naming_them(tmp_path):
    """Before anything is exported, and the store keeps what it had (here: nothing, and no directory)."""
    from conftest import manifests_with
    from zoo.build.pipeline import build
    name = "maskrcnn_resnet50_fpn"
    d = manifests_with(tmp_path, name, ('outputs = ["boxes", "labels", "scores", "masks"]',
                                        'outputs = ["boxes", "labels", "scores"]'))
    result = build([name], tmp_path / "store", "random:0", ["onnx"], progress=False, manifest_dir=str(d))
    (outcome,) = result.models
    assert outcome.refused and "leaves out masks, which the model (MaskRCNN) returns: add masks to outputs" \
        in outcome.refused, result.lines
    assert str(d / f"{name}.toml") in outcome.refused and not (tmp_path / "store").exists()


def test_the_store_schemas_name_every_method_and_runtime():
    """index.json and metadata.json are validated whole: a method or runtime the schemas lack makes a store with it
    unreadable."""
    import json
    schemas = REPO / "zoo" / "schemas"
    artifact = json.loads((schemas / "index.schema.json").read_text())["$defs"]["artifact"]["properties"]
    assert set(artifact["method"]["enum"]) == {"eager", *mf.METHODS}
    assert set(artifact["runtime"]["enum"]) == set(mf.RUNTIMES)
    meta = json.loads((schemas / "metadata.schema.json").read_text())["properties"]
    assert set(meta["method"]["enum"]) == set(mf.METHODS) and set(meta["runtime"]["enum"]) == set(mf.RUNTIMES)
