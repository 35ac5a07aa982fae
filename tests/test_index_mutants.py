"""Property test: a valid index, mutated (keys dropped, types changed, digests and paths replaced by hostile strings),
read through a local directory and an HTTP mirror and loaded: only ZooError comes out, and nothing is created outside
ZOO_HOME and the store. The store is synthetic (small real files, their real digests) so that hundreds of mutants run
in seconds; its model file is not a real ONNX graph, so a mutant that survives every check ends in the runtime's
refusal, which zoo.load reports as a RuntimeFailure (a ZooError too)."""
import copy
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo
from servers import FaultServer
from zoo.core import store
from zoo.errors import IntegrityError, ZooError

SSD = "ssdlite320_mobilenet_v3_large"
MUTANTS = int(os.environ.get("ZOO_MUTANTS", 300))

HOSTILE_PATHS = [
    "/etc/passwd", "../outside.bin", "models/../../outside.bin", "%2e%2e/%2e%2e/outside.bin", "models/%2E%2E/x",
    "..%2f..%2foutside.bin", "models\\..\\..\\outside.bin", "a\x00b", "link/passwd", "linkfile", "", ".", "./index.json",
    "C:/outside.bin", "~/outside.bin", "models//x", "models/x/", "\\\\host\\share\\x", "models/ssd/../../../outside.bin",
]
HOSTILE_DIGESTS = [
    "g" * 64, "A" * 64, "0" * 63, "0" * 65, "../../../../outside" + "0" * 45, "/tmp/" + "0" * 59, "%2e%2e/" + "0" * 57,
    "0" * 32 + "\x00" + "0" * 31, "", "z" * 64, "../" * 21 + "x",
]
WRONG_TYPES = [None, -1, 0, 1.5, True, "x", [], {}, ["x"], {"path": "x"}, 10**30]


def write(root: Path, rel: str, data: bytes) -> dict:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return {"path": rel, "size": len(data), "sha256": store.sha256_bytes(data)}


def synthetic_store(root: Path) -> dict:
    """A store of one model (eager + onnx artifacts) with real files, their sizes and digests."""
    base = f"models/{SSD}"
    weights = write(root, f"{base}/weights.safetensors", b"weights" * 100)
    meta = {"model": SSD, "method": "onnx", "runtime": "onnxruntime", "batch": 1, "artifact_sha256": "",
            "weights": {"sha256": weights["sha256"]}, "parity": {"tolerance": {"mask_atol": 0.05}, "results": {}}}
    model = write(root, f"{base}/onnx/model.onnx", b"not an onnx graph" * 10)
    meta["artifact_sha256"] = model["sha256"]
    return {"format": store.FORMAT, "models": {SSD: {
        "name": SSD, "aliases": ["ssdlite"], "categories": ["__background__", "person"],
        "outputs": ["boxes", "labels", "scores"], "manifest_sha256": "1" * 64,
        "weights": {"kind": "random", "seed": 0, "file": weights},
        "card": write(root, f"{base}/README.md", b"# card\n"),
        "score_spread": {"detections": 10},
        "artifacts": [
            {"method": "eager", "runtime": "pytorch", "format": "safetensors", "batch": None, "devices": ["cpu"],
             "files": {"weights": weights}},
            {"method": "onnx", "runtime": "onnxruntime", "format": "onnx", "batch": 1, "opset": 17,
             "devices": ["cpu", "cuda"], "parity": {"ok": True},
             "files": {"model": model, "metadata": write(root, f"{base}/onnx/metadata.json",
                                                         store.canonical_json(meta)),
                       "reference": write(root, f"{base}/reference.npz", b"npz")}}]}}}


def locations(doc, here=()):
    """Every key path in ``doc`` (dicts and lists), the root excluded."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    for k, v in items:
        yield here + (k,)
        yield from locations(v, here + (k,))


def mutate(doc, where, how, value):
    doc = copy.deepcopy(doc)
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    key = where[-1]
    if how == "drop":
        del parent[key]
    elif how == "dup":  # a list item repeated, a key renamed
        if isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        else:
            parent[str(key) + "_"] = parent.pop(key)
    else:
        parent[key] = value
    return doc


@st.composite
def mutants(draw, index):
    paths = list(locations(index))
    where = draw(st.sampled_from(paths))
    leaf = where[-1]
    if leaf == "path":
        pool = HOSTILE_PATHS
    elif leaf in ("sha256", "manifest_sha256"):
        pool = HOSTILE_DIGESTS
    else:
        pool = WRONG_TYPES + HOSTILE_PATHS[:4] + HOSTILE_DIGESTS[:2]
    how = draw(st.sampled_from(["drop", "dup", "replace", "replace", "replace"]))
    doc = mutate(index, where, how, draw(st.sampled_from(pool)))
    if draw(st.booleans()):  # a second mutation elsewhere
        paths = list(locations(doc))
        if paths:
            doc = mutate(doc, draw(st.sampled_from(paths)), "replace", draw(st.sampled_from(WRONG_TYPES + HOSTILE_PATHS)))
    top = draw(st.sampled_from([None, "format", "models", "extra"]))
    if top == "format":
        doc["format"] = draw(st.sampled_from(["zoo-store/2", 1, None]))
    elif top == "models":
        doc["models"] = draw(st.sampled_from([[], None, {"../x": {}}, {"": index["models"][SSD]}]))
    elif top == "extra":
        doc["channel"] = {"anything": "goes"}  # unknown top-level keys are allowed (newer stores)
    return doc


def listing(root: Path, skip: list[Path]) -> set[str]:
    """Every path under ``root`` (symlinks not followed), except those under ``skip``."""
    out = set()
    for dirpath, dirs, files in os.walk(root):
        d = Path(dirpath)
        dirs[:] = [x for x in dirs if d / x not in skip]
        out.update(str(d / x) for x in dirs + files)
    return out


@pytest.fixture(scope="module")
def world():
    """tmp/outer/inner/{store,home}: '..' in a path or digest would land in inner/ or outer/, which are listed."""
    outer = Path(tempfile.mkdtemp(prefix="zoo-mutants-"))
    inner = outer / "inner"
    root = inner / "store"
    root.mkdir(parents=True)
    index = synthetic_store(root)
    os.symlink("/etc", root / "link")
    os.symlink("/etc/passwd", root / "linkfile")
    server = FaultServer(root)
    yield outer, root, index, server
    server.stop()
    shutil.rmtree(outer)


def exercise(spec: str, home: Path) -> None:
    """What a user does with a source: read the index, fetch every file, load the model."""
    from zoo.load.sources import open_source
    src = open_source(spec, cache_dir=home, offline=False)
    index = src.index()
    for record in store.iter_files(index):
        src.fetch(record)
    zoo.load(SSD, runtime="onnxruntime", source=spec, cache_dir=home)


def test_mutated_indexes_raise_only_zoo_errors_and_write_nowhere_else(world, record_property):
    outer, root, index, server = world
    ran = {"mutants": 0}
    outcomes = Counter()

    @settings(max_examples=MUTANTS, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutants(index))
    def check(doc):
        (root / "index.json").write_text(json.dumps(doc))
        home = Path(tempfile.mkdtemp(prefix="home-", dir=outer / "inner"))
        before = listing(outer, [home, root])
        for spec in (str(root), server.url):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    exercise(spec, home)
                    outcomes["loaded"] += 1
                except ZooError as e:  # anything else fails the test with its traceback
                    outcomes["schema" if "not a valid index" in str(e) else type(e).__name__] += 1
        assert listing(outer, [home, root]) == before
        assert not [p for p in listing(home, []) if not Path(p).resolve().is_relative_to(home.resolve())]
        shutil.rmtree(home)
        ran["mutants"] += 1

    check()
    (root / "index.json").write_text(json.dumps(index))
    print(f"\nindex mutants: {ran['mutants']}, outcomes of {2 * ran['mutants']} loads: {dict(outcomes)}")
    record_property("mutants", {**ran, **outcomes})
    assert ran["mutants"] >= min(MUTANTS, 200) and outcomes["schema"] > ran["mutants"]


def test_the_unmutated_synthetic_store_gets_as_far_as_the_runtime(world, tmp_path):
    """The baseline of the property test: the valid index passes every check, and only the runtime refuses the
    (deliberately fake) model file, with a message naming the file and what to do."""
    outer, root, index, server = world
    (root / "index.json").write_text(json.dumps(index))
    for spec in (str(root), server.url):
        with pytest.raises(ZooError) as e:
            exercise(spec, tmp_path / "home")
        assert type(e.value).__name__ == "RuntimeFailure"
        assert str(e.value).startswith("onnxruntime could not load models/ssdlite320_mobilenet_v3_large/onnx/model.onnx")
        assert "the file's sha256 matched, so the installed runtime differs from the one that built it (see its " \
               "metadata.json): install those versions" in str(e.value)


@pytest.mark.parametrize("where, value, expected", [
    (("models", SSD, "artifacts", 1, "files", "model", "sha256"), "g" * 64,
     "models.ssdlite320_mobilenet_v3_large.artifacts[1].files.model.sha256: expected a sha256 digest: 64 lowercase"),
    (("models", SSD, "artifacts", 1, "batch"), -1,
     "models.ssdlite320_mobilenet_v3_large.artifacts[1].batch: expected null (dynamic batch) or an integer >= 1, got -1"),
    (("models", SSD, "card", "path"), "%2e%2e/%2e%2e/x",
     "models.ssdlite320_mobilenet_v3_large.card.path: expected a relative path inside the store"),
    (("models", SSD, "weights", "file", "size"), "12", "weights.file.size: expected a size in bytes"),
])
def test_a_bad_index_names_the_key_and_what_was_expected(world, tmp_path, where, value, expected):
    outer, root, index, server = world
    doc = mutate(index, where, "replace", value)
    data = json.dumps(doc).encode()
    with pytest.raises(IntegrityError) as e:
        store.read_index_bytes(data, "mirror/index.json")
    assert str(e.value).startswith("mirror/index.json: not a valid index file: ") and expected in str(e.value)
    assert "rebuild the store (zoo build) or ask its publisher" in str(e.value)


def test_a_missing_key_is_named(world):
    outer, root, index, server = world
    doc = mutate(index, ("models", SSD, "artifacts", 1, "runtime"), "drop", None)
    with pytest.raises(IntegrityError, match=r"models\.ssdlite320_mobilenet_v3_large\.artifacts\[1\]: 'runtime' is "
                                             r"a required property \(in an artifact\)"):
        store.read_index_bytes(json.dumps(doc).encode(), "index.json")


def test_unknown_keys_are_allowed_where_newer_stores_add_them(world):
    outer, root, index, server = world
    doc = copy.deepcopy(index)
    doc["channel"] = {"name": "official"}
    doc["models"][SSD]["manifest"] = {"name": SSD}
    doc["models"][SSD]["score_spread"] = {"per_image": [[0.1, 0.9]]}
    doc["models"][SSD]["artifacts"][1]["thresholds"] = {"score": 0.5}
    assert store.read_index_bytes(json.dumps(doc).encode(), "index.json") == doc
    doc["models"][SSD]["artifacts"][1]["files"]["model"]["extra"] = 1  # a file record is closed: path, size, sha256
    with pytest.raises(IntegrityError, match=r"files\.model.*'extra' was unexpected"):
        store.read_index_bytes(json.dumps(doc).encode(), "index.json")


def test_a_symlink_in_a_local_store_is_refused(world, tmp_path):
    outer, root, index, server = world
    from zoo.load.sources.local import LocalSource
    with pytest.raises(IntegrityError, match="linkfile in .* is a symbolic link or leads outside the store"):
        LocalSource(root).fetch({"path": "linkfile", "size": 1, "sha256": "0" * 64})
