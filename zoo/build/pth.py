"""A ``.pth`` read without running pickled code (``torch.load(weights_only=True)``), with errors that say what the
file holds: used for the user's checkpoints (zoo.build.weights) and detectron2's (zoo.build.d2convert). Needs torch."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from ..errors import ZooError, first_line, plain


def load_pth(path: str | Path, error: type[ZooError] = ZooError):
    """What a ``.pth`` holds, unpickled with ``weights_only=True`` (tensors and plain containers only: a pickled
    object is refused before any of its code runs, as ``error`` naming what it calls)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = plain(str(e))
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if not found:  # not a refusal of code: a damaged or foreign file
            why = [ln.strip() for ln in text.partition("WeightsUnpickler error:")[2].splitlines() if ln.strip()]
            raise error(f"{path} cannot be read as a {path.suffix} checkpoint (not a file torch.save wrote, or a "
                        f"damaged one: {why[0] if why else first_line(e)}); save model.state_dict() with "
                        "torch.save, or use .safetensors") from None
        raise error(f"{path} is not a plain state dict: it holds pickled code (it calls {found.group(1)}), which "
                    "zoo does not unpickle (loading it would run code the file names). Save the weights alone and "
                    "pass that file: torch.save(model.state_dict(), 'weights.pth'), or safetensors.torch.save_file("
                    "model.state_dict(), 'weights.safetensors')") from None
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise error(f"{path} cannot be read as a {path.suffix} checkpoint: {type(e).__name__}: {first_line(e)}") \
            from None
