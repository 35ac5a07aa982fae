"""`zoo build --ray [ADDRESS]`: each (model, method) export and parity check runs as a Ray task on a cluster.

A task builds its one method into a staging directory of its own (``pipeline.build_model`` with ``methods=[method]``:
the model's weights, its eager reference and that one artifact) and returns the staged files' bytes, so the nodes need
no shared filesystem, only `pip install "zoo[build,serve]"`. The driver checks that the tasks agree on the files
they share (weights, reference), writes every file atomically into the store and lets ``pipeline.build`` write the
model card of the merged entry and the index as for a local build: the store is byte-identical to a local one.
The manifest travels as its text, so a manifest directory of the user's need not exist on the nodes."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from ..core import store
from ..errors import IntegrityError, ZooError

NO_CALIBRATION = ("zoo build --ray does not take --calibration (the images would have to go to every node): build the "
                  "approximate methods without --ray")


def _build_method(manifest_text: bytes, name: str, weights: str, methods: list[str], command: str) -> dict:
    """Runs on a node: build one model with ``methods`` into a private directory; returns entry, files and report."""
    import ray
    from tqdm.auto import tqdm

    from ..core.manifest import parse
    from .pipeline import build_model, fixed_threads
    with tempfile.TemporaryDirectory(prefix="zoo-raybuild-") as tmp:
        root = Path(tmp)
        (root / "manifest").mkdir()
        (root / "manifest" / f"{name}.toml").write_bytes(manifest_text)
        manifest = parse(root / "manifest" / f"{name}.toml")
        stage = root / "store"
        try:
            with fixed_threads():
                outcome = build_model(manifest, stage, weights=weights, methods=methods, command=command,
                                      bar=tqdm(disable=True))
        except ZooError as e:
            return {"error": str(e)}
        files = {p.relative_to(stage).as_posix(): p.read_bytes() for p in sorted(stage.rglob("*")) if p.is_file()}
    return {"outcome": asdict(outcome), "files": files, "node": ray.get_runtime_context().get_node_id()}


class RayBuilder:
    """A ``builder`` for ``pipeline.build``: each (model, method) is a Ray task (all started by ``prepare``), gathered
    into ``out`` one model at a time."""

    def __init__(self, address: str | None = None, threads: int | None = None):
        from ..serve import require_ray
        require_ray("zoo build --ray")
        import ray

        from .pipeline import BUILD_THREADS
        ray.init(address=address or None, log_to_driver=False)
        # a task builds with the pipeline's fixed thread count (the bytes depend on it); its environment says so too
        self.threads = threads or BUILD_THREADS
        self.task = ray.remote(num_cpus=1, max_retries=1, runtime_env={
            "env_vars": {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}})(_build_method)
        self.nodes: set[str] = set()
        self.tasks = 0
        self.pending: dict[tuple, list] = {}

    def _submit(self, manifest, weights: str, methods: list[str] | None, command: str) -> tuple[list[str], list]:
        selected = [e.method for e in manifest.selected(methods)]
        jobs = [[m] for m in selected] or [list(methods or [])]  # none of the methods asked: the eager entry alone
        text = Path(manifest.path).read_bytes()
        return selected, [self.task.remote(text, manifest.name, weights, job, command) for job in jobs]

    def prepare(self, jobs: list[tuple], weights: str, methods: list[str] | None) -> None:
        """Start the tasks of every (manifest, command) now, so that models build in parallel too
        (``pipeline.build`` then asks for them one model at a time)."""
        for m, command in jobs:
            self.pending[(m.name, m.digest, weights, tuple(methods or ()), command)] = self._submit(
                m, weights, methods, command)

    def __call__(self, manifest, out: Path, *, weights: str, methods: list[str] | None, command: str, bar,
                 eval_data=None, calibration=None):
        import ray

        from .pipeline import ModelOutcome
        if eval_data is not None:
            raise ZooError("zoo build --ray does not take --eval (the dataset would have to be on every node): build "
                           "with --ray, then run `zoo eval NAME --data DIR --source STORE` here")
        if calibration is not None:
            raise ZooError(NO_CALIBRATION)

        key = (manifest.name, manifest.digest, weights, tuple(methods or ()), command)
        selected, refs = self.pending.pop(key, None) or self._submit(manifest, weights, methods, command)
        bar.set_postfix_str(f"{manifest.name}: {len(refs)} Ray task(s)")
        outs = ray.get(refs)
        errors = [o["error"] for o in outs if "error" in o]
        if errors:
            raise ZooError(errors[0])
        self.tasks += len(outs)
        self.nodes |= {o["node"] for o in outs}
        parts = [ModelOutcome(**o["outcome"]) for o in outs]
        exported = sorted((a for p in parts for a in p.entry["artifacts"] if a["method"] != "eager"),
                          key=lambda a: selected.index(a["method"]))
        entry = {**parts[0].entry, "artifacts": parts[0].entry["artifacts"][:1] + exported}
        shared = {k: v for k, v in entry.items() if k != "artifacts"}
        for p in parts[1:]:
            if {k: v for k, v in p.entry.items() if k != "artifacts"} != shared:
                raise IntegrityError(f"{manifest.name}: the Ray tasks built different weights or references "
                                     "(nodes with different toolchains?); build locally or align the nodes' packages")
        mdir = out / "models" / manifest.name
        for method in selected:
            shutil.rmtree(mdir / method, ignore_errors=True)
        written: dict[str, bytes] = {}
        for o in outs:
            for rel, data in o["files"].items():
                if rel in written:  # the weights and reference every task made: equal, written once
                    if written[rel] != data:
                        raise IntegrityError(f"{manifest.name}: Ray tasks disagree on {rel}")
                    continue
                written[rel] = data
                store.atomic_write(out / rel, data)
        bar.update(1 + len(selected))
        return ModelOutcome(manifest.name, entry=entry, selected=selected,
                            built=[m for m in selected if any(m in p.built for p in parts)],
                            failed=[m for m in selected if any(m in p.failed for p in parts)],
                            lines=[line for p in parts for line in p.lines])

    def summary(self) -> str:
        return f"ray: {self.tasks} task(s) on {len(self.nodes)} node(s), {self.threads} torch thread(s) each"
