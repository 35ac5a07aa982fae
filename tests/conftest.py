"""Shared fixtures. Stores are built once per session (building is the slow part of the suite)."""
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIGHT = ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_320_fpn"]
# Methods the full store leaves out to keep CI within its budget (the light store builds `export`; `zoo build` builds
# it for every model): torch.export of the ResNet-50 models takes a minute or two each here, and AOTInductor
# (SLOW_METHODS, built only when asked) compiles for many minutes per model (docs/torch-export.md).
from zoo.core.manifest import SLOW_METHODS  # noqa: E402

# openvino: the light store proves it in CI (both light models, parity checked by their build); its file is the onnx
# entry's (copied by the build), so the full store would only repeat the same graphs' parity on another runtime, and
# `zoo build` (the documented full build, docs/openvino.md) builds it for every model whose manifest lists it.
FULL_STORE_SKIPS = {"export", "openvino", *SLOW_METHODS}
# ONNX of these two is left to the full build: the parts they add to the light models' (the v2 backbone's and conv box
# head's BatchNorm layers; VGG and SSD300's L2 norm) are plain layers to an exporter, while the export-sensitive steps
# (SSD's and the R-CNNs' post-processing, pasted masks, dense heads' candidates) are in the ONNX graphs of the light
# models and of the other four heavy ones; their dynamo export takes 80-100 s a model here (docs/full-build.md).
ONNX_BY_FULL_BUILD = {"fasterrcnn_resnet50_fpn_v2", "ssd300_vgg16"}
# The heavy models the full store builds in CI: one for each part of torchvision's detectors the light models lack
# (ResNet-50 FPN v1 with frozen BatchNorm and the mask head; the keypoint head; the v2 backbone and conv box head;
# RetinaNet's and FCOS's dense heads, v1 and GroupNorm; SSD on VGG), the verbatim call's mask_rcnn among them. The
# other four reuse those parts (fasterrcnn_resnet50_fpn is maskrcnn_resnet50_fpn without its mask head,
# maskrcnn_resnet50_fpn_v2 is fasterrcnn_resnet50_fpn_v2 with it, retinanet_resnet50_fpn_v2 is RetinaNet's
# post-processing on FCOS's GroupNorm head, fasterrcnn_mobilenet_v3_large_fpn is the light 320 model at full size):
# they are built by the documented full build (docs/reliability.md), or here with ZOO_TEST_ALL_MODELS=1 (20+ minutes).
CI_HEAVY = ["maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn",
            "fcos_resnet50_fpn", "ssd300_vgg16"]


def heavy_models() -> list:
    """The models the full store holds: CI_HEAVY, or every model but the light ones with ZOO_TEST_ALL_MODELS=1."""
    from zoo.core.manifest import all_manifests
    return [n for n in all_manifests() if n not in LIGHT] if os.environ.get("ZOO_TEST_ALL_MODELS") else list(CI_HEAVY)


def full_store_skips(name: str) -> set:
    return FULL_STORE_SKIPS | ({"onnx"} if name in ONNX_BY_FULL_BUILD and not os.environ.get("ZOO_TEST_ALL_MODELS")
                               else set())


def full_store_methods(manifest) -> list:
    return [e.method for e in manifest.exports if e.method not in full_store_skips(manifest.name)]


def run_zoo(*args, env=None, check=True, timeout=1800, cwd=None):
    """Run the `zoo` CLI in a fresh process (not the one that built anything)."""
    proc = subprocess.run([sys.executable, "-m", "zoo.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"zoo {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def building(config, what: str):
    """Say on the terminal (even under -q, past pytest's capture) what an expensive fixture builds, and how long it
    took: the suite never sits at a dot for minutes without a word."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    say = reporter.write_line if reporter else (lambda line: print(line, file=sys.__stderr__, flush=True))
    say(f"\n[fixture] building {what} ...")
    t0 = time.perf_counter()
    yield
    say(f"[fixture] built {what} in {time.perf_counter() - t0:.0f}s")


@pytest.fixture(scope="session")
def light_store(tmp_path_factory, pytestconfig):
    """Two small models (an SSD and an R-CNN), every method, seeded weights. ZOO_TEST_LIGHT_STORE=DIR reuses a copy of
    one an earlier session built (BASETEMP/light0/store): a developer's shortcut for running a few test files."""
    from zoo.build.pipeline import build
    if os.environ.get("ZOO_TEST_LIGHT_STORE"):
        return Path(os.environ["ZOO_TEST_LIGHT_STORE"])
    out = tmp_path_factory.mktemp("light") / "store"
    with building(pytestconfig, f"light_store ({', '.join(LIGHT)}, every method; minutes)"):
        result = build(LIGHT, out, "random:0", progress=False)
    assert not result.failed, "\n".join(result.lines)
    return out


@pytest.fixture(scope="session")
def onnx_store(tmp_path_factory, pytestconfig):
    """SSDlite, ONNX only, seeded weights 0 (~10 s): for tests that need a real store but not every method."""
    from zoo.build.pipeline import build
    out = tmp_path_factory.mktemp("onnx") / "store"
    with building(pytestconfig, f"onnx_store ({LIGHT[0]}, onnx)"):
        result = build([LIGHT[0]], out, "random:0", ["onnx"], progress=False)
    assert not result.failed, "\n".join(result.lines)
    return out


def build_full_store(out: Path):
    """Build the full store into OUT (one build a set of methods: see full_store_skips); returns the BuildResult."""
    from zoo.build.pipeline import BuildResult, build
    from zoo.core.manifest import METHODS
    groups: dict = {}
    for name in heavy_models():
        groups.setdefault(tuple(sorted(set(METHODS) - full_store_skips(name))), []).append(name)
    result = BuildResult()
    for methods, group in groups.items():
        result.models += build(group, out, "random:0", methods=list(methods), progress=False).models
    return result


# Stores built in a process of their own (tests/background.py) from the end of collection, beside the rest of the
# suite: fixture -> "module:function" that builds it into OUT and returns what its fixture needs besides OUT (JSON).
# Their tests run last, in this order (the detectron2 fixtures' store is done long before the full store).
BACKGROUND = {"d2_store": "test_convert_d2:build_d2_store", "full_store": "conftest:full_store_outcomes"}
STARTED = pytest.StashKey[dict]()  # fixture -> (store, build process, its log), once its build started


def _uses(item, fixture: str) -> bool:
    """The test needs the fixture, or asks for it by request.getfixturevalue and says so by a mark (uses_FIXTURE)."""
    return fixture in getattr(item, "fixturenames", ()) or item.get_closest_marker(f"uses_{fixture}") is not None


@pytest.hookimpl(trylast=True)  # after -k / -m have deselected what they deselect
def pytest_collection_modifyitems(session, config, items):
    """The tests of the background stores run last, and each store's build starts now in a process of its own
    (tests/background.py): they are most of the suite's CPU time, much of it single-threaded (torch.export, the
    dynamo ONNX exporter), so they run beside the other tests, which wait on servers, subprocesses and one core as
    often as not."""
    if config.option.collectonly:
        return
    started = config.stash.setdefault(STARTED, {})
    for fixture, builder in BACKGROUND.items():
        users = [item for item in items if _uses(item, fixture)]
        if not users or (fixture == "full_store" and os.environ.get("ZOO_TEST_FULL_STORE")):
            continue
        items[:] = [item for item in items if not _uses(item, fixture)] + users
        out = config._tmp_path_factory.mktemp(fixture) / "store"
        log = open(out.parent / "build.log", "wb")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "background.py"), builder, str(out)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        started[fixture] = (out, proc, log)


NEEDS_DISK_GB = 8  # at peak: the session's stores (the full store 3.6 GB), a test's store copy, torch's caches (5.1 GB measured)


def pytest_sessionstart(session):
    """Say so at once when the temp dir's disk cannot hold the suite, rather than fail its last tests with ENOSPC."""
    import tempfile
    where = session.config.option.basetemp or tempfile.gettempdir()
    free = shutil.disk_usage(Path(where).parent if not Path(where).exists() else where).free / 2**30
    if free < NEEDS_DISK_GB:
        session.config.get_terminal_writer().line(
            f"WARNING: {free:.1f} GB free at {where}; the suite needs about {NEEDS_DISK_GB} GB there (set --basetemp "
            "or TMPDIR to a larger disk)", yellow=True, bold=True)


def pytest_sessionfinish(session):
    for _, proc, _ in session.config.stash.get(STARTED, {}).values():
        if proc.poll() is None:  # the session ended before a test waited for it
            proc.kill()
            proc.wait()


def built_in_background(config, fixture: str, what: str):
    """(store, what its builder returned) once the background build of FIXTURE is done; None where none started."""
    import json
    started = config.stash.get(STARTED, {}).get(fixture)
    if started is None:
        return None
    out, proc, log = started
    with building(config, f"{what}: waiting for its build, running since collection"):
        code = proc.wait(timeout=3600)
        log.close()
    outcome = out.parent / "result.json"
    if code or not outcome.is_file():
        raise AssertionError(f"the {fixture} build exited {code}:\n{(out.parent / 'build.log').read_text()[-6000:]}")
    return out, json.loads(outcome.read_text())


def full_store_outcomes(out: Path) -> list:
    """Build the full store into OUT; its model outcomes, as JSON."""
    import dataclasses
    return [dataclasses.asdict(m) for m in build_full_store(out).models]


@pytest.fixture(scope="session")
def full_store(tmp_path_factory, pytestconfig):
    """The heavy models (heavy_models()), every method but full_store_skips(name), seeded weights: the build checks each
    artifact's parity. Built in the background since collection (pytest_collection_modifyitems), else here.

    ZOO_TEST_FULL_STORE=DIR reuses a store built by `zoo build --out DIR --weights random:0` (a developer's shortcut:
    building takes ~40 minutes); what the build refused is then read from what its index lacks."""
    import json

    from zoo.build.pipeline import BuildResult, ModelOutcome
    from zoo.core.manifest import all_manifests
    prebuilt = os.environ.get("ZOO_TEST_FULL_STORE")
    if prebuilt:
        index = json.loads((Path(prebuilt) / "index.json").read_text())["models"]
        result = BuildResult()
        for m in map(all_manifests().get, heavy_models()):
            have = {a["method"] for a in index.get(m.name, {}).get("artifacts", [])}
            result.models.append(ModelOutcome(m.name, selected=full_store_methods(m),
                                              built=[e for e in full_store_methods(m) if e in have],
                                              failed=[e for e in full_store_methods(m) if e not in have]))
        return Path(prebuilt), result
    what = f"full_store ({len(heavy_models())} models, seeded weights; about 2 minutes a model on 2 cores)"
    done = built_in_background(pytestconfig, "full_store", what)
    if done is None:
        out = tmp_path_factory.mktemp("full") / "store"
        with building(pytestconfig, what):
            return out, build_full_store(out)
    out, outcomes = done
    return out, BuildResult([ModelOutcome(**m) for m in outcomes])


def manifests_with(root: Path, name: str, *replacements: tuple) -> Path:
    """A copy of the manifests in ROOT/manifests whose NAME manifest has each (old, new) text replaced (each old text
    must be there)."""
    manifests = root / "manifests"
    shutil.copytree(REPO / "manifests", manifests)
    f = manifests / f"{name}.toml"
    text = f.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    f.write_text(text)
    return manifests


@pytest.fixture(scope="session", autouse=True)
def trusted_test_sources(tmp_path_factory):
    """The suite's own stores (built under pytest's temporary directory, served on 127.0.0.1, published to a local
    Hub) are trusted to run code, as a user trusts their own builds with $ZOO_TRUSTED_SOURCES; the tests of consent
    itself (test_untrusted.py) unset it. Set here, so subprocesses inherit it."""
    base = str(tmp_path_factory.getbasetemp().resolve())
    entries = [base, "http://127.0.0.1:", "http://localhost:", "hf://*", "/tmp"]
    old = os.environ.get("ZOO_TRUSTED_SOURCES")
    os.environ["ZOO_TRUSTED_SOURCES"] = ",".join(entries)
    yield
    if old is None:
        os.environ.pop("ZOO_TRUSTED_SOURCES", None)
    else:
        os.environ["ZOO_TRUSTED_SOURCES"] = old


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    home = tmp_path / "zoo-home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.delenv("ZOO_SOURCE", raising=False)
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    return home


@pytest.fixture
def hashes(monkeypatch):
    """The paths hashed (zoo.core.store.sha256_file, or zoo.load.verified.hash_loaded / hash_descriptor for a load), in
    order, while the test runs."""
    from zoo.core import store
    from zoo.load import verified
    calls, read = [], []
    real_file, real_read, real_loaded = store.sha256_file, verified.read_whole, verified.hash_loaded
    real_descriptor = verified.hash_descriptor

    def counting_file(path):
        calls.append(Path(path))
        return real_file(path)

    def reading(path, *f):  # a load reads its file, then hashes what it read
        read.append(Path(path))
        return real_read(path, *f)

    def counting_loaded(data):
        calls.append(read[-1])
        return real_loaded(data)
    monkeypatch.setattr(store, "sha256_file", counting_file)
    monkeypatch.setattr(verified, "read_whole", reading)
    def counting_descriptor(f):  # a load by the open file's name (TorchScript) hashes from the descriptor
        calls.append(Path(f.name))
        return real_descriptor(f)
    monkeypatch.setattr(verified, "hash_loaded", counting_loaded)
    monkeypatch.setattr(verified, "hash_descriptor", counting_descriptor)
    return calls


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (CI=true, as `.ci/run` runs there) a skipped test fails: every skip in this suite stands for something
    .ci/run installs (nginx, olah, Ray, root for `unshare -n`), so in CI a skip would hide a missing feature test."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome, report.longrepr = "failed", f"skipped under CI, where it must run: {reason}"
