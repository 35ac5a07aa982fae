"""detectron2's COCO model zoo (manifests/detectron2/): the shipped manifests are what the converter makes of
detectron2's own configs, and `--weights official` downloads a detectron2 checkpoint from a real HTTP server on
127.0.0.1, converts it at build time and trusts its digest on first use (the small Mask R-CNN fixture stands in for
the official file)."""
import functools
import hashlib
import http.server
import json
import shutil
import threading
import tomllib
from pathlib import Path

import pytest

from zoo.build.d2convert import config, modelzoo, spec
from zoo.build.d2convert.manifest import document
from zoo.core import manifest as mf
from zoo.errors import IntegrityError

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "d2"
SHIPPED = REPO / "manifests" / mf.D2_COLLECTION
STEM = "small_mask_rcnn_R_50_FPN"
NAME = "d2_small_mask_official"
ALIAS = "d2_small_mask_R_50_FPN"  # detectron2's spelling, as the shipped entries' aliases


def test_the_shipped_manifests_are_the_converters_of_detectron2s_configs():
    """Every entry's manifest, regenerated from detectron2's config (the fixtures' verbatim copies), equals the
    committed file: tools/d2_model_zoo.py wrote them, nothing was edited by hand."""
    assert sorted(p.stem for p in SHIPPED.glob("*.toml")) == sorted(e.manifest_name for e in modelzoo.ENTRIES)
    for entry in modelzoo.ENTRIES:
        committed = tomllib.loads((SHIPPED / f"{entry.manifest_name}.toml").read_text())
        assert committed == tomllib.loads(_toml(modelzoo.manifest_doc(entry, FIXTURES))), entry.name


def _toml(doc: dict) -> str:
    from zoo.core import toml
    return toml.dumps(doc)


def test_each_entry_resolves_by_detectron2s_name_with_its_published_ap():
    published = {"mask_rcnn_R_50_FPN_3x": {"box_map": 41.0, "mask_map": 37.2},
                 "keypoint_rcnn_X_101_32x8d_FPN_3x": {"box_map": 57.3, "kp_map": 66.0},
                 "panoptic_fpn_R_50_3x": {"box_map": 40.0, "mask_map": 36.5, "pq": 41.5},
                 "pointrend_rcnn_R_50_FPN_3x_coco": {"mask_map": 38.3}}
    for entry in modelzoo.ENTRIES:
        m = mf.resolve(entry.name)
        assert m.name == entry.manifest_name and m.weights["checkpoint"] == "detectron2"
        assert m.weights["url"].startswith(modelzoo.URL) and m.weights["url"].endswith(entry.checkpoint)
        assert m.weights["metrics"] and "sha256" not in m.weights  # detectron2 publishes no digest: trusted on first use
        if entry.name in published:
            assert m.weights["metrics"] == published[entry.name]
    assert set(mf.all_manifests()).isdisjoint(mf.d2_manifests())  # `zoo build` with no name: torchvision's only
    assert mf.resolve("panoptic_fpn_R_101_3x").outputs[-3:] == ("sem_seg", "panoptic_seg", "segments_info")
    rows = mf.support_rows(collection=mf.D2_COLLECTION)
    assert {r["model"] for r in rows} == set(mf.d2_manifests())
    assert {r["method"] for r in rows if r["status"] == "supported"} == {"tracing", "scripting", "onnx", "export"}
    exported = {r["model"] for r in rows if r["method"] == "export" and r["status"] == "supported"}
    assert exported == set(mf.d2_manifests())  # every entry (the loops over detections as torch.while_loop)
    assert {r["method"] for r in rows if r["status"].startswith("unsupported")} == {"aoti"}
    assert {r["devices"] for r in rows if r["method"] == "eager"} == {"cpu"}  # no detectron2 model was run on CUDA


def test_each_entry_makes_its_architecture():
    """The builder arguments make a model (so a download is never wasted on a manifest that cannot build): the
    backbone depth and groups, the heads and their sizes as the config says."""
    from zoo.load.architecture import architecture
    for entry in modelzoo.ENTRIES:
        m = mf.resolve(entry.name)
        model = architecture(m)
        names = list(model.state_dict())
        blocks = {n.split(".res4.")[1].split(".")[0] for n in names if ".res4." in n}  # ...bottom_up.res4.K. ...
        assert len(blocks) == (23 if "101" in entry.name else 6), entry.name
        if "X_101" in entry.name:
            assert m.builder_args["num_groups"] == 32 and m.builder_args["width_per_group"] == 8
        for output, head in (("masks", "mask_head"), ("keypoints", "keypoint_head"), ("sem_seg", "sem_seg_head")):
            assert (output in m.outputs) == any(head in n for n in names), (entry.name, output)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv" / "137849600"
    root.mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root.parent))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/137849600"
    httpd.shutdown()


@pytest.fixture
def official(server, tmp_path, monkeypatch):
    """A manifest directory with one torchvision manifest and a detectron2 collection holding the small Mask R-CNN as
    an official model zoo entry served from 127.0.0.1; ZOO_HOME a fresh cache."""
    root, base = server
    shutil.copy(FIXTURES / f"{STEM}.pkl", root / "model_final_f10217.pkl")
    d = tmp_path / "manifests"
    (d / mf.D2_COLLECTION).mkdir(parents=True)
    shutil.copy(REPO / "manifests" / "ssdlite320_mobilenet_v3_large.toml", d)
    doc = document(NAME, spec.from_config(config.load(FIXTURES / f"{STEM}.yaml")), f"{STEM}.yaml")
    doc["aliases"] = [ALIAS]
    doc["weights"] = {"checkpoint": "detectron2", "url": f"{base}/model_final_f10217.pkl", "config": f"{STEM}.yaml",
                      "license": modelzoo.LICENSE, **doc["weights"], "metrics": {"box_map": 41.0, "mask_map": 37.2}}
    from zoo.build import scaffold
    scaffold.write_doc(doc, d / mf.D2_COLLECTION / f"{NAME}.toml")
    monkeypatch.setenv("ZOO_MANIFESTS", str(d))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    return root / "model_final_f10217.pkl", tmp_path / "home" / "official"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_official_detectron2_weights_are_downloaded_converted_and_trusted_on_first_use(official, tmp_path):
    served, cache = official
    sha = _sha(served)
    from zoo.build.pipeline import build
    from zoo.build.reproduce import lock_of
    store = tmp_path / "home" / "store"  # the local store, as `zoo build NAME --weights official` builds
    result = build([ALIAS], store, "official", ["tracing"], progress=False)
    assert not result.failed, result.lines
    index = json.loads((store / "index.json").read_text())
    w = index["models"][NAME]["weights"]
    assert w["kind"] == "official" and w["checkpoint"] == "detectron2" and w["checkpoint_sha256"] == sha
    assert w["sha256_expected"] is None  # first use: nothing to hold it to yet
    assert json.loads((cache.parent / "trusted-checkpoints.json").read_text()) == {w["url"]: sha}
    assert lock_of(store)["models"][NAME]["checkpoint_sha256"] == sha
    # the stored weights are exactly what `zoo convert-d2` makes of the same checkpoint and config
    from safetensors.torch import load_file
    from zoo.build.d2convert.manifest import convert
    converted = convert(served, FIXTURES / f"{STEM}.yaml", tmp_path / "converted", name=NAME)
    stored, expected = load_file(str(store / w["file"]["path"])), load_file(str(converted.weights))
    assert stored.keys() == expected.keys() and all((stored[k] == expected[k]).all() for k in stored)
    card = (store / index["models"][NAME]["card"]["path"]).read_text()
    assert "Official detectron2 weights" in card and sha in card and "- detectron2" in card
    # loaded by detectron2's spelling with no source: from the local store, the masks in the artifact's outputs
    import numpy as np
    import torch
    import zoo
    model = zoo.load(ALIAS, runtime="pytorch", method="tracing")
    photo = np.load(FIXTURES / "photos.npz")["astronaut/image"]
    out = model([torch.from_numpy(photo).permute(2, 0, 1).float() / 255])[0]
    assert len(out["boxes"]) > 0 and out["masks"].shape[-2:] == photo.shape[:2]
    # the next build holds the cached copy to the digest of the first
    from zoo.build import weights as models
    again = models.official_model(mf.resolve(NAME), progress=False)[1]
    assert again["sha256_expected"] == sha and again["checkpoint_sha256"] == sha


def test_a_changed_detectron2_checkpoint_is_refused_after_first_use(official, tmp_path):
    served, cache = official
    from zoo.build import weights as models
    first = models.official_model(mf.resolve(NAME), progress=False)[1]["checkpoint_sha256"]
    shutil.copy(FIXTURES / "small_faster_rcnn_R_50_FPN.pkl", served)  # the server now holds another file
    for copy in cache.glob("*.pkl"):
        copy.unlink()
    with pytest.raises(IntegrityError) as e:
        models.official_model(mf.resolve(NAME), progress=False)
    text = str(e.value)
    assert first in text and _sha(served) in text and "trusted-checkpoints.json" in text and "remove its line" in text
    assert not list(cache.glob("*.pkl*"))  # nothing half-written, nothing of the new file kept
    # a cached copy altered on disk is not used either: it is fetched again and held to the first digest
    shutil.copy(FIXTURES / f"{STEM}.pkl", served)
    models.official_model(mf.resolve(NAME), progress=False)
    (cached,) = cache.glob("*.pkl")
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")
    assert models.official_model(mf.resolve(NAME), progress=False)[1]["checkpoint_sha256"] == first
    assert _sha(cached) == first


def test_the_trust_on_first_use_outlives_zoo_cache_clear(official, tmp_path):
    """`zoo cache clear` removes the cached checkpoints but not the digests trusted on first use: a file changed on the
    server after a clear is still refused. A record at the older place (official/first-use.json) is read and moved; a
    damaged record is a clear error, not a fresh trust."""
    from conftest import run_zoo
    from zoo.build import weights as models
    served, cache = official
    first = models.official_model(mf.resolve(NAME), progress=False)[1]["checkpoint_sha256"]
    out = run_zoo("cache", "clear", "--cache-dir", cache.parent).stdout
    assert not cache.exists(), out
    shutil.copy(FIXTURES / "small_faster_rcnn_R_50_FPN.pkl", served)
    with pytest.raises(IntegrityError, match=first):
        models.official_model(mf.resolve(NAME), progress=False)
    record = cache.parent / "trusted-checkpoints.json"
    trusted = json.loads(record.read_text())
    record.unlink()  # as an older zoo left it: under official/
    cache.mkdir(exist_ok=True)
    (cache / "first-use.json").write_text(json.dumps(trusted))
    with pytest.raises(IntegrityError, match=first):
        models.official_model(mf.resolve(NAME), progress=False)
    assert json.loads(record.read_text()) == trusted
    record.write_text("{not json")
    with pytest.raises(IntegrityError, match="trusted on first use.*unreadable.*delete it"):
        models.official_model(mf.resolve(NAME), progress=False)


def test_a_rebuild_whose_official_checkpoint_changed_differs_from_its_lock():
    from zoo.build.reproduce import compare
    files = {"models/m/weights.safetensors": "a" * 64}
    lock = {"index_sha256": "x", "models": {"m": {"checkpoint_sha256": "1" * 64, "files": files}}}
    same = {"index_sha256": "x", "models": {"m": {"checkpoint_sha256": "1" * 64, "files": files}}}
    other = {"index_sha256": "x", "models": {"m": {"checkpoint_sha256": "2" * 64, "files": files}}}
    assert compare(lock, same, ["m"]).problems == []
    (problem,) = compare(lock, other, ["m"]).problems
    assert "official checkpoint" in problem and "1111111111111111" in problem and "2222222222222222" in problem


def test_the_docs_table_is_the_manifests():
    assert modelzoo.markdown() in (REPO / "docs" / "detectron2.md").read_text()


def test_seeded_weights_of_the_mask_rcnn_entry_behave_like_trained_ones():
    """`zoo build mask_rcnn_R_50_FPN_3x --weights random:0` (no network): the full-size model's seeded weights pass the
    build's trained-like gate on the build's images, its frozen batch norms recalibrated (the others with a recipe:
    measured by the same function, docs/seeded-weights.md)."""
    from zoo.build import trainedlike
    from zoo.build.pipeline import seeded_figures
    from zoo.models.detectron2.layers import FrozenBatchNorm2d
    m = mf.resolve("mask_rcnn_R_50_FPN_3x")
    assert {e.name for e in modelzoo.ENTRIES if mf.resolve(e.name).random_weights} == set(modelzoo.SEEDED)
    figures = seeded_figures(m, 0)
    assert trainedlike.failures(figures, len(m.categories)) == [], figures
    from zoo.build.weights import random_model
    model, info = random_model(m, 0)
    frozen = [x for x in model.modules() if isinstance(x, FrozenBatchNorm2d)]
    assert info["recipe"]["bn_recalibrated_layers"] == len(frozen) > 50
    assert all(float(x.running_var.min()) > 0 and not bool((x.running_var == 1).all()) for x in frozen)


def test_zoo_list_and_info_show_the_model_zoo(capsys):
    from zoo.cli import main
    assert main(["list", "--detectron2"]) == 0
    out = capsys.readouterr().out
    assert all(f" {e.name} " in out for e in modelzoo.ENTRIES) and "maskrcnn_resnet50_fpn" not in out
    assert main(["list"]) == 0
    assert "mask_rcnn_R_50_FPN_3x" not in capsys.readouterr().out  # the README's table: torchvision's twelve
    assert main(["list", "mask_rcnn_R_50_FPN_3x", "--method", "onnx"]) == 0
    (row,) = capsys.readouterr().out.splitlines()[2:]
    assert row.split()[:4] == ["mask_rcnn_r_50_fpn_3x", "mask_rcnn_R_50_FPN_3x", "onnx", "onnxruntime"]
    assert main(["info", "panoptic_fpn_R_50_3x"]) == 0
    out = capsys.readouterr().out
    assert "trusted on first use" in out and "pq 41.5" in out and "panoptic_fpn_R_50_3x.yaml" in out


def test_a_detectron2_entry_may_not_take_a_name_the_directory_uses(tmp_path, monkeypatch):
    from zoo.errors import ManifestError
    d = tmp_path / "manifests"
    (d / mf.D2_COLLECTION).mkdir(parents=True)
    shutil.copy(REPO / "manifests" / "ssdlite320_mobilenet_v3_large.toml", d)
    text = (SHIPPED / "mask_rcnn_r_50_fpn_3x.toml").read_text().replace('"mask_rcnn_R_50_FPN_3x"', '"ssdlite"')
    (d / mf.D2_COLLECTION / "mask_rcnn_r_50_fpn_3x.toml").write_text(text)
    monkeypatch.setenv("ZOO_MANIFESTS", str(d))
    with pytest.raises(ManifestError, match=r"mask_rcnn_r_50_fpn_3x.toml: key 'aliases': expected a name no manifest"):
        mf.resolve("mask_rcnn_r_50_fpn_3x")


def test_converting_a_panoptic_model_leaves_the_templates_as_they_were():
    """The manifests a conversion starts from are cached and shared: a Panoptic FPN's tolerance keys written into
    its own tables must not reach the Mask R-CNN template (nor every later conversion and build in the process)."""
    before = json.dumps(mf.templates()["maskrcnn_resnet50_fpn"].raw, sort_keys=True)
    doc = document("p", spec.from_config(config.load(FIXTURES / "small_panoptic_fpn_R_50.yaml")), "p.yaml")
    assert all("panoptic_agree" in e["tolerance"] for e in doc["export"])
    assert json.dumps(mf.templates()["maskrcnn_resnet50_fpn"].raw, sort_keys=True) == before
    mask = next(e for e in modelzoo.ENTRIES if e.name == "mask_rcnn_R_50_FPN_3x")
    plain = document("m", spec.from_config(config.load(modelzoo.config_path(mask, FIXTURES))), "m.yaml")
    assert not any("panoptic_agree" in e["tolerance"] for e in plain["export"])
