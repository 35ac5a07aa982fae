"""`zoo verify`: re-hash every file of a store, bundle or cache, check provenance, replay reference inputs."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ..core import schema, store, trust
from ..core.staging import STAGING, swap_begun
from ..errors import SeededWeightsWarning, ZooError


@dataclass
class Line:
    status: str      # ok | not replayed | hash mismatch | missing | parity failure | accuracy failure | provenance mismatch
    #                  | error
    what: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "not replayed")  # not replayed: code from an untrusted store, hashes checked

    def __str__(self) -> str:
        return f"{self.status:20s} {self.what}" + (f"  {self.detail}" if self.detail else "")


def verify_files(root: Path, index: dict) -> list[Line]:
    lines = []
    for record in store.iter_files(index):
        path = root / store.safe_relpath(record["path"])
        if not path.is_file():
            lines.append(Line("missing", record["path"]))
            continue
        actual = store.sha256_file(path)
        lines.append(Line("ok", record["path"]) if actual == record["sha256"] else
                     Line("hash mismatch", record["path"], f"index {record['sha256']}, file {actual}"))
    return lines


def verify_cache(home: Path) -> list[Line]:
    """A download cache holds files by digest: each file's name is its sha256."""
    lines = []
    for path in sorted((Path(home) / "blobs" / "sha256").glob("*/*")):
        if path.name.endswith((".lock", ".part")):
            continue
        actual = store.sha256_file(path)
        lines.append(Line("ok" if actual == path.name else "hash mismatch", str(path),
                          "" if actual == path.name else f"name says {path.name}, file has {actual}"))
    return lines


def _exports(root: Path, index: dict, model: str | None, runtime: str | None):
    """(name, entry, artifact, what) of each exported artifact, those of ``model`` / ``runtime`` when given."""
    from ..load.loader import manifest_for
    for name, entry in sorted(index["models"].items()):
        if model and manifest_for(model, index, str(root)).name != name:
            continue
        for artifact in entry["artifacts"]:
            if artifact["method"] == "eager" or (runtime and artifact["runtime"] != runtime):
                continue
            yield name, entry, artifact, f"{name} {artifact['runtime']}/{artifact['method']}"


def provenance(root: Path, index: dict, model: str | None = None, runtime: str | None = None) -> list[Line]:
    """Each artifact's metadata names the artifact and the weights the index lists (no replay: no runtime needed)."""
    lines = []
    for _, entry, artifact, what in _exports(root, index, model, runtime):
        try:
            meta_rel = artifact["files"]["metadata"]["path"]
            meta = schema.parse("metadata", (root / meta_rel).read_bytes(), str(root / meta_rel))
        except ZooError as e:
            lines.append(Line("error", what, str(e)))
            continue
        if meta.get("artifact_sha256") != artifact["files"]["model"]["sha256"]:
            lines.append(Line("provenance mismatch", what, f"metadata says artifact {meta.get('artifact_sha256')}, "
                              f"index says {artifact['files']['model']['sha256']}"))
        elif meta["weights"]["sha256"] != entry["weights"]["file"]["sha256"]:
            lines.append(Line("provenance mismatch", what, "metadata's weights digest differs from the store's weights"))
        else:
            lines.append(Line("ok", what, "provenance: its metadata names this artifact and the store's weights"))
    return lines


def replay(root: Path, index: dict, model: str | None = None, runtime: str | None = None,
           trust_code: bool = False) -> list[Line]:
    """Run each artifact on its stored reference input and compare with the eager outputs recorded at build time.
    A code artifact (zoo/core/trust.py) is replayed only from a store the user trusts: verifying never runs a stranger's
    code."""
    from ..core import parity
    from ..core.reference import load_reference
    from ..load.loader import load
    from ..load.sources.local import LocalSource

    code_ok = trust.trusted(LocalSource(root), trust_code)
    lines = []
    for name, _, artifact, what in _exports(root, index, model, runtime):
        if trust.is_code(artifact["method"]) and not code_ok:
            lines.append(Line("not replayed", what, f"{artifact['method']} is code and this store is not one you "
                              f"said you trust (its hashes were checked): {trust.consent_hint(LocalSource(root))}"))
            continue
        try:
            meta_rel = artifact["files"]["metadata"]["path"]
            meta = schema.parse("metadata", (root / meta_rel).read_bytes(), str(root / meta_rel))
            image, expected = load_reference(root / artifact["files"]["reference"]["path"])
            with warnings.catch_warnings():  # replaying seeded weights is fine: only the numbers matter here
                warnings.simplefilter("ignore", SeededWeightsWarning)
                detector = load(name, runtime=artifact["runtime"], method=artifact["method"], source=str(root),
                                trust_code=code_ok)
            got = detector([image])[0]
            if "accuracy" in meta:  # an approximate artifact: its gate is agreement AP, not parity
                lines.append(_agreement_line(meta["accuracy"], expected, got, what))
                continue
            tol = parity.Tolerance.from_dict({**meta["parity"]["tolerance"],
                                              "mask_atol": meta["parity"]["tolerance"]["mask_atol"] + 1 / 255})
            report = parity.compare([expected], [got], tol)
            lines.append(Line("ok" if report.ok else "parity failure", what,
                              report.line() + ("" if report.ok else " | " + "; ".join(report.failures))))
        except ZooError as e:
            lines.append(Line("error", what, str(e)))
        except Exception as e:  # one artifact's runtime failure must not hide the others' results
            lines.append(Line("error", what, f"{type(e).__name__}: {e}"))
    return lines


def _agreement_line(accuracy: dict, expected: dict, got: dict, what: str) -> Line:
    """An approximate artifact's replay: agreement AP with the recorded eager outputs on the reference image, held to
    the bounds its build was gated on (zoo/build/accuracy.py)."""
    from .agreement import agreement_ap
    figures = agreement_ap([expected], [got], accuracy["agreement"]["score_threshold"])
    if figures is None:
        return Line("ok", what, "agreement: eager has no confident detection on the reference image to agree on")
    low = [f"{k} {v}" for k, v in accuracy["bounds"].items() if figures[k.removeprefix("min_agreement_")] < v]
    text = (f"agreement AP50 {figures['ap50']:.4f} AP {figures['ap']:.4f} with eager's {figures['ground_truth']} "
            "recorded detections on the reference image")
    return Line("accuracy failure" if low else "ok", what, text + (" | below " + ", ".join(low) if low else ""))


def verify_path(path: str | Path, model: str | None = None, runtime: str | None = None, do_replay: bool = True,
                trust_code: bool = False) -> list[Line]:
    root = Path(path)
    if (root / store.INDEX).is_file():
        index = store.load_index(root)
        lines = [Line("interrupted build", d.name, "killed while swapping this model in: any `zoo build ... --out "
                      f"{root}` finishes it") for d in sorted((root / STAGING).glob("*")) if swap_begun(d)]
        lines += verify_files(root, index)
        if all(x.ok for x in lines):  # a replayed artifact's own line says it all
            lines += [x for x in provenance(root, index, model, runtime) if not (x.ok and do_replay)]
        if do_replay and all(x.ok for x in lines):
            lines += replay(root, index, model, runtime, trust_code)
        return lines
    if (root / "blobs").is_dir():
        return verify_cache(root)
    raise ZooError(f"{root} is neither a store/bundle (no {store.INDEX}) nor a zoo cache (no blobs/)")
