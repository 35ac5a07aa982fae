"""Eager torchvision models from manifests, with official, seeded or stored weights. Needs torch."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import torch

from . import seeded
from .errors import IntegrityError, ZooError
from .manifest import Manifest


def builder(manifest: Manifest):
    module, _, fn = manifest.builder.rpartition(".")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError) as e:
        raise ZooError(f"{manifest.path}: builder {manifest.builder!r} cannot be imported: {e}") from None


def architecture(manifest: Manifest) -> torch.nn.Module:
    """The model with torchvision's architecture and no weights loaded (eval mode)."""
    return builder(manifest)(weights=None, weights_backbone=None).eval()


def parse_weights(spec: str) -> tuple[str, int | None]:
    """'official' or 'random:SEED'."""
    if spec == "official":
        return "official", None
    kind, _, seed = spec.partition(":")
    if kind == "random" and seed.isdigit():
        return "random", int(seed)
    raise ZooError(f"--weights must be 'official' or 'random:SEED' (SEED an integer), got {spec!r}")


def random_model(manifest: Manifest, seed: int) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = architecture(manifest)
    rw = manifest.random_weights
    recipe = seeded.make_decisive(model, seed, rw["spread"], rw["bn_recalibration"], rw.get("bias"))
    return model, {"kind": "random", "seed": seed, "recipe": recipe,
                   "note": "seeded random weights for offline builds: detections are meaningless"}


def torch_hub_checkpoint(url: str, sha_prefix: str) -> tuple[Path | None, str | None]:
    """The checkpoint torchvision itself would have downloaded: ``torch.hub.get_dir()/checkpoints/<url basename>``,
    checked as torchvision checks it (the hash prefix in the file name, ``-<hex>.``, starts its sha256) and against
    the manifest's prefix. Returns (path, full sha256), or (None, None) when it is absent or does not pass."""
    import re
    import warnings

    from .store import sha256_file
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
    torchvision's check, else downloaded with a hash check; loaded with ``weights_only=True``. The full sha256 of the
    file used is recorded (``checkpoint_sha256``)."""
    from .http import download
    from .store import sha256_file

    url, sha = manifest.weights["url"], manifest.weights["sha256"]
    path, digest = torch_hub_checkpoint(url, sha)
    if path is None:
        cache = Path(cache_dir or os.environ.get("ZOO_HOME", Path.home() / ".cache" / "zoo")) / "official"
        path = cache / url.rsplit("/", 1)[-1]
        if path.exists() and not sha256_file(path).startswith(sha):
            path.unlink()
        if not path.exists():
            download(url, path, sha, progress=progress)
        digest = sha256_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = architecture(manifest)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # torchvision's official checkpoints come from FrozenBatchNorm models: no num_batches_tracked, unused in eval
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise IntegrityError(f"{url} does not fit {manifest.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), {"kind": "official", "url": url, "sha256_expected": sha, "checkpoint_sha256": digest,
                          "enum": manifest.weights.get("enum")}


def state_dict_for_store(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in sorted(model.state_dict().items())}


def stored_model(manifest: Manifest, weights_file: str | Path, device: str = "cpu") -> torch.nn.Module:
    """The eager reference: torchvision's architecture with the exact stored weights (safetensors, no pickle)."""
    from safetensors.torch import load_file

    model = architecture(manifest)
    state = load_file(str(weights_file))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise IntegrityError(f"{weights_file} does not fit {manifest.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval().to(device)
