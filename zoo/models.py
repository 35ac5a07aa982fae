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
    recipe = seeded.apply_recipe(model, seed, manifest.random_weights, len(manifest.categories))
    return model, {"kind": "random", "seed": seed, "recipe": recipe,
                   "note": "seeded random weights for offline builds: detections are meaningless"}


def official_model(manifest: Manifest, cache_dir: str | Path | None = None, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Download the manifest's official checkpoint, check its hash, load it with ``weights_only=True``."""
    from .http import download

    url, sha = manifest.weights["url"], manifest.weights["sha256"]
    cache = Path(cache_dir or os.environ.get("ZOO_HOME", Path.home() / ".cache" / "zoo")) / "official"
    path = cache / url.rsplit("/", 1)[-1]
    if path.exists():
        from .store import sha256_file
        if not sha256_file(path).startswith(sha):
            path.unlink()
    if not path.exists():
        download(url, path, sha, progress=progress)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = architecture(manifest)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # torchvision's official checkpoints come from FrozenBatchNorm models: no num_batches_tracked, unused in eval
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise IntegrityError(f"{url} does not fit {manifest.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval(), {"kind": "official", "url": url, "sha256_expected": sha, "enum": manifest.weights.get("enum")}


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
