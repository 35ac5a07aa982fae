"""The weights a build starts from: official, seeded or the user's own checkpoint. Needs torch."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from . import seeded
from .pth import load_pth
from ..core.manifest import Manifest
from ..core.settings import default_home
from ..core.store import sha256_file
from ..errors import ZooError, first_line
from ..load.architecture import architecture, fit_state


CHECKPOINTS = (".pth", ".pt", ".safetensors")


def parse_weights(spec: str) -> tuple[str, int | None]:
    """'official', 'random:SEED' or a checkpoint file (kind 'file'; the spec is its path)."""
    if spec == "official":
        return "official", None
    kind, _, seed = spec.partition(":")
    if kind == "random" and seed.isdigit():
        return "random", int(seed)
    if spec.endswith(CHECKPOINTS):
        return "file", None
    raise ZooError(f"--weights must be 'official' or 'random:SEED' (SEED an integer), or a checkpoint file "
                   f"({', '.join(CHECKPOINTS)}), got {spec!r}")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or ``.pth``/``.pt``. A ``.pth`` is unpickled with ``weights_only=True``:
    tensors and plain containers only, so a pickled object is refused before any of its code runs."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ZooError(f"checkpoint {path} does not exist")
        try:
            from safetensors.torch import load_file
            state = load_file(str(path))
        except Exception as e:  # a truncated or foreign file
            raise ZooError(f"{path} cannot be read as a {path.suffix} checkpoint: {type(e).__name__}: "
                           f"{first_line(e)}") from None
    else:
        state = load_pth(path)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        inner = [k for k in ("model", "state_dict") if isinstance(state, dict) and isinstance(state.get(k), dict)]
        hint = f" (it holds {inner[0]!r}: save checkpoint[{inner[0]!r}] alone)" if inner else ""
        raise ZooError(f"{path} holds a {type(state).__name__}, not a state dict of name -> tensor{hint}")
    return state


def file_model(manifest: Manifest, path: str | Path) -> tuple[torch.nn.Module, dict]:
    """The manifest's architecture with the user's checkpoint (``--weights FILE``)."""
    model = fit_state(architecture(manifest), read_checkpoint(path), str(path), manifest.name)
    return model, {"kind": "file", "file_name": Path(path).name, "source_sha256": sha256_file(path)}


def random_model(manifest: Manifest, seed: int) -> tuple[torch.nn.Module, dict]:
    if not manifest.random_weights:
        official = " or its official weights (--weights official)" if "url" in manifest.weights else ""
        raise ZooError(f"{manifest.path} has no [random_weights] table (no seeded-weights recipe is made for this "
                       f"model): build it from a checkpoint (--weights FILE){official}")
    torch.manual_seed(seed)
    model = architecture(manifest)
    recipe = seeded.apply_recipe(model, seed, manifest.random_weights, len(manifest.categories))
    return model, {"kind": "random", "seed": seed, "recipe": recipe,
                   "note": "seeded random weights for offline builds: detections are meaningless"}


def torch_hub_checkpoint(url: str, sha_prefix: str) -> tuple[Path | None, str | None]:
    """The checkpoint torchvision itself would have downloaded: ``torch.hub.get_dir()/checkpoints/<url basename>``,
    checked as torchvision checks it (the hash prefix in the file name, ``-<hex>.``, starts its sha256) and against
    the manifest's prefix. Returns (path, full sha256), or (None, None) when it is absent or does not pass."""
    import warnings

    name = url.rsplit("/", 1)[-1]
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not path.is_file():
        return None, None
    digest = sha256_file(path)
    in_name = re.search(r"-([a-f0-9]*)\.", name)
    if (in_name and not digest.startswith(in_name.group(1))) or not digest.startswith(sha_prefix):
        warnings.warn(f"{path} (torchvision's download cache) has sha256 {digest}, not the expected {sha_prefix}...: "
                      "not used, downloading instead", stacklevel=3)
        return None, None
    return path, digest


def official_model(manifest: Manifest, cache_dir: str | Path | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """The manifest's official checkpoint: from torchvision's own download cache when it is there and passes
    torchvision's check, else downloaded with a hash check; loaded with ``weights_only=True``. A detectron2 checkpoint
    (``weights.checkpoint = "detectron2"``) is read without unpickling code and converted (zoo.build.d2convert); its
    digest, which detectron2 does not publish, is trusted on first use (detectron2_checkpoint). The full sha256 of the file
    used is recorded (``checkpoint_sha256``)."""
    if "url" not in manifest.weights:
        raise ZooError(f"{manifest.path} names no official weights (weights.url): build it from a checkpoint "
                       f"(--weights FILE)")
    url = manifest.weights["url"]
    if manifest.weights.get("checkpoint") == "detectron2":
        from .d2convert.manifest import fit_official
        path, digest, first = detectron2_checkpoint(manifest, cache_dir, progress)
        model = architecture(manifest)
        fit_official(model, manifest, path, url)
        return model, {"kind": "official", "url": url, "sha256_expected": first, "checkpoint_sha256": digest,
                       "checkpoint": "detectron2", "config": manifest.weights.get("config")}
    sha = manifest.weights["sha256"]
    path, digest = torch_hub_checkpoint(url, sha)
    if path is None:
        path = cached_download(url, _file_name(manifest, url), sha, cache_dir, progress)
        digest = sha256_file(path)
    model = fit_state(architecture(manifest), torch.load(path, map_location="cpu", weights_only=True), url, manifest.name)
    return model, {"kind": "official", "url": url, "sha256_expected": sha, "checkpoint_sha256": digest,
                   "enum": manifest.weights.get("enum")}


def _file_name(manifest: Manifest, url: str, parts: int = 1) -> str:
    """The cache's name for the URL's file: its last ``parts`` path components joined by '_' (detectron2 names every
    checkpoint model_final_*.pkl under a directory of its model id)."""
    from ..core.store import PART
    name = "_".join(url.rstrip("/").split("/")[-parts:])
    if not PART.fullmatch(name):  # it names a file in the cache: a plain name only
        raise ZooError(f"{manifest.path}: weights url {url!r} must end in a plain file name (letters, digits, '_', "
                       "'.', '+', '-'), as torchvision's and detectron2's checkpoint URLs do")
    return name


def cached_download(url: str, filename: str, sha: str, cache_dir: str | Path | None, progress: bool) -> Path:
    """``url`` in the cache's official/ folder as ``filename``, downloaded unless a copy with a digest starting
    ``sha`` is there (a copy that does not match is replaced)."""
    from ..core.store import mark_home
    from ..load.transport import download
    cache = default_home(cache_dir) / "official"
    path = cache / filename
    if path.exists() and not sha256_file(path).startswith(sha):
        path.unlink()
    if not path.exists():
        mark_home(cache.parent)
        download(url, path, sha, progress=progress)
    return path


OLD_TRUSTED = Path("official") / "first-use.json"  # where the record was before 2026-12-07 (core.store.TRUSTED_CHECKPOINTS)


def detectron2_checkpoint(manifest: Manifest, cache_dir: str | Path | None = None,
                          progress: bool = True) -> tuple[Path, str, str | None]:
    """A detectron2 model zoo checkpoint in the cache, its sha256, and the digest it was held to (None on first use).
    The first download's digest is recorded in the zoo home's trusted-checkpoints.json (kept by `zoo cache clear`);
    every later use, of the cached copy or of a new download, must have it (a changed file on the server is refused,
    naming both digests). A manifest's own weights.sha256, where it has one, is checked as torchvision's are."""
    from filelock import FileLock

    from ..core.store import TRUSTED_CHECKPOINTS, atomic_write, canonical_json, mark_home
    from ..errors import IntegrityError
    url = manifest.weights["url"]
    home = default_home(cache_dir)
    home.mkdir(parents=True, exist_ok=True)
    mark_home(home)
    record = home / TRUSTED_CHECKPOINTS
    with FileLock(str(home / (TRUSTED_CHECKPOINTS + ".lock"))):
        recorded = _read_trusted(record)
        trusted = {**_read_trusted(home / OLD_TRUSTED), **recorded}
        if trusted != recorded:  # an older zoo's record moves to the new place (the old file is left alone)
            atomic_write(record, canonical_json(trusted))
        pinned = manifest.weights.get("sha256") or trusted.get(url)
        try:
            path = cached_download(url, _file_name(manifest, url, parts=2), pinned or "", cache_dir, progress)
        except IntegrityError as e:
            if manifest.weights.get("sha256"):
                raise
            raise IntegrityError(f"{e}. The expected digest is the one this cache trusted on first use ({record}): "
                                 "the file at that URL has changed since. If detectron2 replaced it on purpose, "
                                 f"remove its line from {record} to trust the new file") from None
        digest = sha256_file(path)
        if url not in trusted:
            atomic_write(record, canonical_json({**trusted, url: digest}))
    return path, digest, pinned


def _read_trusted(path: Path) -> dict:
    import json

    from ..errors import IntegrityError
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{path} (the checkpoint digests this cache trusted on first use) is unreadable: {e}. "
                             "Restore it from a backup, or delete it to trust the next downloads anew") from None
    if not (isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())):
        raise IntegrityError(f"{path} must be a JSON object of checkpoint URL to sha256; restore it from a backup, or "
                             "delete it to trust the next downloads anew")
    return data


def state_dict_for_store(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in sorted(model.state_dict().items())}


def baked_settings(model: torch.nn.Module) -> dict:
    """The torchvision keyword arguments an export freezes into the artifact, with the eager model's values, and which
    of them are the score threshold and the detection count (the two a loaded model can still raise / lower).

    R-CNNs name them ``box_score_thresh`` / ``box_detections_per_img``; RetinaNet, FCOS and SSD ``score_thresh`` /
    ``detections_per_img``. All compare ``scores > threshold`` and keep the first k after NMS, highest score first."""
    t = model.transform
    values: dict = {"image_mean": [float(v) for v in t.image_mean], "image_std": [float(v) for v in t.image_std]}
    if t.fixed_size is not None:
        values["fixed_size"] = [int(v) for v in t.fixed_size]
    else:
        values.update(min_size=int(t.min_size[-1]), max_size=int(t.max_size))
    if hasattr(model, "roi_heads"):
        rpn, heads = model.rpn, model.roi_heads
        values.update(box_score_thresh=float(heads.score_thresh), box_detections_per_img=int(heads.detections_per_img),
                      box_nms_thresh=float(heads.nms_thresh), rpn_pre_nms_top_n_test=int(rpn._pre_nms_top_n["testing"]),
                      rpn_post_nms_top_n_test=int(rpn._post_nms_top_n["testing"]), rpn_nms_thresh=float(rpn.nms_thresh),
                      rpn_score_thresh=float(rpn.score_thresh))
        return {"score_thresh": "box_score_thresh", "detections_per_img": "box_detections_per_img", "baked": values}
    values.update(score_thresh=float(model.score_thresh), detections_per_img=int(model.detections_per_img),
                  nms_thresh=float(model.nms_thresh), topk_candidates=int(model.topk_candidates))
    return {"score_thresh": "score_thresh", "detections_per_img": "detections_per_img", "baked": values}
