"""detectron2 checkpoints read without running what they name: a model zoo ``.pkl`` through an unpickler that builds
only dicts, lists, strings, numbers and numpy arrays (any other global is refused before it is called), a ``.pth``
through ``torch.load(weights_only=True)``. Returns the state dict (name -> numpy array or tensor) and where it came
from."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ...errors import ConversionError, first_line

SUFFIXES = (".pkl", ".pth", ".pt")
REFUSED = "refused global "  # how ArraysOnly names a global it does not build


def _reconstruct(subtype, shape, dtype):
    """numpy's array reconstructor, for plain ndarrays only."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"{REFUSED}array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _encode(text, encoding="latin1"):
    """``_codecs.encode`` as protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"{REFUSED}_codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _scalar(dtype, data=None):
    """numpy's scalar reconstructor: a number from its bytes."""
    return np.frombuffer(data, dtype=dtype)[0] if data else dtype.type()


# the globals a numpy-array pickle names (numpy < 2 writes numpy.core, numpy >= 2 numpy._core), and nothing else
ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct, ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
           ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
           ("numpy.core.multiarray", "scalar"): _scalar, ("numpy._core.multiarray", "scalar"): _scalar,
           ("collections", "OrderedDict"): dict, ("_codecs", "encode"): _encode}


class ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        found = ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"{REFUSED}{module}.{name}")
        return found


def read_pkl(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = ArraysOnly(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        if not str(e).startswith(REFUSED):  # not a refusal of ours: a damaged file or no pickle at all
            raise ConversionError(f"{path} cannot be read as a detectron2 .pkl checkpoint (not a pickle, or a damaged "
                                  f"one: {first_line(e)})") from None
        what = str(e).removeprefix(REFUSED)
        raise ConversionError(
            f"{path} holds a pickled {what}, which is not a dict, list, string, number or numpy array: refused "
            "without running it (a detectron2 model zoo .pkl holds only those; loading this one would run code it "
            "names). Convert a checkpoint you trust to a .pth state dict (torch.save({'model': state_dict}, ...)) "
            "and pass that") from None
    except Exception as e:  # truncated, not a pickle
        raise ConversionError(f"{path} cannot be read as a detectron2 .pkl checkpoint: {type(e).__name__}: "
                              f"{first_line(e)}") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path} holds a {type(data).__name__}, expected detectron2's checkpoint dict "
                              "{'model': {name: array}, '__author__': ...}")
    if "blobs" in data or data.get("__author__") == "Caffe2":
        raise ConversionError(f"{path} is a Caffe2/Detectron1 checkpoint, whose names detectron2 matches by heuristics "
                              "(zoo does not): pass a detectron2 model's model_final_*.pkl or .pth")
    return data["model"] if isinstance(data.get("model"), dict) else data


def read_pth(path: Path) -> dict:
    from ..pth import load_pth
    data = load_pth(path, ConversionError)
    if isinstance(data, dict) and isinstance(data.get("model"), dict):  # detectron2's training checkpoint
        data = data["model"]
    if not isinstance(data, dict):
        raise ConversionError(f"{path} holds a {type(data).__name__}, expected a detectron2 state dict or a "
                              "checkpoint {'model': state_dict, ...}")
    return data


def read(path: str | Path) -> dict[str, np.ndarray]:
    """The checkpoint's state dict as float32/int numpy arrays, by detectron2's parameter names."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ConversionError(f"{path}: expected a detectron2 checkpoint ({', '.join(SUFFIXES)})")
    if not path.is_file():
        raise ConversionError(f"checkpoint {path} does not exist")
    state = read_pkl(path) if path.suffix == ".pkl" else read_pth(path)
    out, bad = {}, []
    for k, v in state.items():
        if hasattr(v, "detach"):  # a tensor from a .pth
            v = v.detach().cpu().numpy()
        if not isinstance(k, str) or not isinstance(v, np.ndarray) or v.dtype.kind not in "fiub":
            bad.append(str(k))
            continue
        out[k] = v
    if bad:
        raise ConversionError(f"{path}: {len(bad)} entries of its model are not numeric arrays: "
                              f"{', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}")
    return out
