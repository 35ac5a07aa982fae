"""No build ever removes an artifact it did not replace: random sequences of builds of random methods into one store,
some failing at export, at parity, at eval, with an unexpected exception, or killed (SIGKILL, in a forked child),
checked after each build: every artifact ever built and not since replaced is listed, present and verifies
(`zoo verify`'s hashes and provenance), and a build with any failure leaves the store byte-identical but for what it
rebuilt. The real pipeline (build, build_model, carry_over, staging, index, cards, metadata) runs; only the two
expensive steps are fakes: the eager reference (weights and reference bytes from the weights spec) and the export
and its checks (bytes unique to each build, or the failure drawn)."""
import itertools
import os
import signal
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.build import pipeline
from zoo.core import parity, store
from zoo.core.manifest import resolve
from zoo.core.staging import LOCK, STAGING, bookkeeping
from zoo.core.timing import timed_calls
from zoo.errors import ParityError, ZooError
from zoo.ops import verify

SSD = "ssdlite320_mobilenet_v3_large"
METHODS = [e.method for e in resolve(SSD).exports]
FAILURES = ["export", "parity", "eval", "crash"]
PLAN: dict = {}             # method -> "ok" or a failure, read by the fakes
SERIAL = itertools.count()  # every export's bytes differ from every other's
TIMING = timed_calls(lambda x: x, [0])[1]


def fake_reference(manifest, out, weights, bar, eval_data=None):
    if PLAN.get("kill") == "eager":
        os.kill(os.getpid(), signal.SIGKILL)
    name = manifest.name
    (out / "models" / name).mkdir(parents=True, exist_ok=True)
    weights_rel, ref_rel = f"models/{name}/weights.safetensors", f"models/{name}/reference.npz"
    store.atomic_write(out / weights_rel, f"weights {weights}".encode())
    store.atomic_write(out / ref_rel, f"reference {weights}".encode())
    record = store.file_record(out, weights_rel)
    info = {"kind": "random", "seed": int(weights.split(":")[1]), "recipe": {"recipe_version": 2},
            "sha256": record["sha256"]}
    image = np.zeros((3, 8, 8), np.float32)
    return pipeline.Reference(weights_rel, info, record, ref_rel, [image], frozenset(), [image], [], {}, {}, TIMING)


def fake_export(manifest, out, ref, spec, art_rel, bar):
    mode = PLAN[spec.method]
    path = out / art_rel
    if mode == "kill":
        path.write_bytes(b"half an artifact")
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "export":
        path.write_bytes(b"half an artifact")
        raise ZooError(f"{spec.method} export failed: the exporter raised")
    path.write_bytes(f"{spec.method} {ref.weights_info['seed']} {next(SERIAL)}".encode())
    if mode == "parity":
        raise ParityError("sizes+grey: image 0: mask IoU 0.12 < 0.9")
    if mode == "eval":
        raise ParityError("COCO mAP differs from eager's by more than eval.map_tolerance 0.1 points: segm 0.00 vs "
                          "eager 84.80")
    if mode == "crash":
        raise RuntimeError("onnxruntime exploded")
    return pipeline.Checked({}, {"sizes+grey": parity.Report(), "batch": parity.Report()}, TIMING)


def listed(root: Path) -> dict:
    """method -> the sha256 of its artifact file, for the store's SSD entry ({} when there is none)."""
    if not (root / store.INDEX).exists():
        return {}
    entry = store.load_index(root)["models"].get(SSD)
    return {a["method"]: a["files"]["model"]["sha256"] for a in entry["artifacts"] if a["method"] != "eager"} \
        if entry else {}


def contents(root: Path) -> dict:
    """Every file of the store but the build's own bookkeeping."""
    return {str(p.relative_to(root)): store.sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not bookkeeping(p.relative_to(root))}


def killed_build(root: Path, weights: str, methods) -> None:
    """The build in a forked child that SIGKILLs itself where PLAN says."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            if PLAN.get("kill") == "index":
                real = store.atomic_write

                def half_index(path, data):
                    if Path(path).name == store.INDEX:
                        os.kill(os.getpid(), signal.SIGKILL)
                    real(path, data)
                store.atomic_write = half_index
            pipeline.build([SSD], root, weights, methods, progress=False)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    # killed; or, for a kill due at the index write, refused before it (so the index was never written)
    assert (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL) or (
        PLAN["kill"] == "index" and os.WEXITSTATUS(status) == 3), status


steps = st.lists(st.fixed_dictionaries({
    "weights": st.sampled_from(["random:0", "random:0", "random:1"]),
    "methods": st.one_of(st.none(), st.lists(st.sampled_from(METHODS), min_size=1, max_size=3, unique=True)),
    "modes": st.fixed_dictionaries({m: st.sampled_from(["ok"] * 5 + FAILURES) for m in METHODS}),
    "kill": st.sampled_from([None] * 6 + ["eager", "export", "index"]),
}), min_size=2, max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps)
def test_no_build_removes_an_artifact_it_did_not_replace(tmp_path_factory, monkeypatch, steps):
    monkeypatch.setattr(pipeline, "eager_reference", fake_reference)
    monkeypatch.setattr(pipeline, "export_and_check", fake_export)
    root = tmp_path_factory.mktemp("prop") / "store"
    for step in steps:
        before, files_before = listed(root), contents(root) if root.exists() else {}
        weights_before = store.load_index(root)["models"][SSD]["weights"]["file"]["sha256"] if before else None
        PLAN.clear()
        PLAN.update(step["modes"])
        selected = [e.method for e in resolve(SSD).selected(step["methods"])]
        if step["kill"]:
            PLAN["kill"] = step["kill"] if selected or step["kill"] != "export" else "eager"
            if PLAN["kill"] == "export":
                PLAN[selected[0]] = "kill"
            if PLAN["kill"] == "index":  # killed writing the index of a model about to be stored
                PLAN.update({m: "ok" for m in selected})
            killed_build(root, step["weights"], step["methods"])
            assert (contents(root) if root.exists() else {}) == files_before
            continue
        result = pipeline.build([SSD], root, step["weights"], step["methods"], progress=False)
        (outcome,) = result.models
        now = listed(root)
        failed = [m for m in selected if PLAN[m] != "ok"]
        assert sorted(outcome.failed) == sorted(m for m in failed if PLAN[m] != "crash") or outcome.refused
        if failed or outcome.refused:  # any failure: every artifact it did not rebuild is there, byte-identical
            assert all(now.get(m) == sha for m, sha in before.items() if m not in outcome.stored), \
                (step, before, now, result.lines)
            assert outcome.refused or not outcome.dropped
        if outcome.refused:
            assert contents(root) == files_before if root.exists() else not files_before, result.lines
        for m, sha in before.items():  # listed as before, or replaced by this build (rebuilt, or stale weights)
            assert now.get(m) == sha or m in outcome.stored or m in outcome.dropped, (step, m, result.lines)
        for m in outcome.dropped:
            weights_now = store.load_index(root)["models"][SSD]["weights"]["file"]["sha256"]
            assert step["methods"] is None and not failed and weights_now != weights_before
        # the summary names what failed and what was kept
        for m in failed:
            assert any(line.startswith(f"FAIL {SSD}") and f" {m} " in line for line in result.lines) or \
                outcome.refused, result.lines
        if outcome.kept:
            assert any(line.startswith(f"kept {SSD}") and ", ".join(outcome.kept) in line for line in result.lines)
        assert set(outcome.kept) == {m for m in before if m not in outcome.stored} - set(outcome.dropped) \
            or outcome.refused
        if (root / store.INDEX).exists():
            lines = verify.verify_path(root, do_replay=False)
            assert all(x.ok for x in lines), [str(x) for x in lines if not x.ok]
            assert {x.what for x in lines if x.what.startswith(f"{SSD} ")} == \
                {f"{SSD} {a['runtime']}/{a['method']}" for a in store.load_index(root)["models"][SSD]["artifacts"]
                 if a["method"] != "eager"}  # each artifact's provenance was checked
        else:  # nothing was ever stored into the new directory: it is not left behind (unless a kill left staging,
            # which the next build clears, leaving only the build lock it took to do so)
            left = [p.name for p in root.iterdir() if not p.name.startswith(LOCK)] if root.exists() else []
            assert not before and not now and left in ([], [STAGING])
