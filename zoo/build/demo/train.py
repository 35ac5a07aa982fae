"""Train the demo detector (``detector.py``) on ``shapes.py`` scenes, reproducibly (fixed seeds, one thread order),
and the checkpoint the package ships: ``zoo/data/shapes_detector.pth`` with ``shapes_detector.json`` beside it (how
it was made, its sha256 and its held-out box mAP).

    python -m zoo.build.demo.train            # re-train it (about 2-4 minutes on 2 CPU cores) and rewrite both files

``checkpoint()`` is the shipped file while the training code is the one it was made with; after a change to this
module, shapes.py or detector.py, it trains once and caches the result by the code's digest under
``$ZOO_TEST_CACHE`` (default ``~/.cache/zoo-tests``), written atomically under a file lock."""
from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from ...core import settings
from . import detector, shapes

STEPS, BATCH, TRAIN_IMAGES, SEED = 900, 4, 400, 0


HELDOUT_SEED, HELDOUT_IMAGES = 1, 60  # scenes the detector never trained on (training uses seed 0)


def shipped_path() -> Path:
    return Path(str(files("zoo") / "data" / "shapes_detector.pth"))


def shipped_info() -> dict:
    return json.loads(shipped_path().with_suffix(".json").read_text(encoding="utf-8"))


def cache_key() -> str:
    """The digest of the training code (this module's training part, shapes.py and detector.py): what a checkpoint
    was trained by."""
    h = hashlib.sha256()
    own = Path(__file__).read_text(encoding="utf-8")
    own = own[own.index("STEPS, BATCH"):own.index("def cache_key")]  # the recipe, not the bookkeeping below it
    for text in (Path(shapes.__file__).read_text(encoding="utf-8"), Path(detector.__file__).read_text(encoding="utf-8"),
                 own):
        h.update(text.encode())
    return h.hexdigest()[:16]


def _tensors(data, mask_of=None):
    out = []
    for im, objects in data:
        image = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()
        boxes = torch.tensor([[x, y, x + w, y + h] for _, (x, y, w, h), _ in objects], dtype=torch.float32)
        labels = torch.tensor([c + 1 for c, _, _ in objects], dtype=torch.int64)
        target = {"boxes": boxes, "labels": labels}
        if mask_of:
            target["masks"] = torch.from_numpy(np.stack([mask_of(c, box) for c, box, _ in objects]))
        out.append((image, target))
    return out


def train(steps: int = STEPS, log=None, build=detector.build, mask_of=None) -> torch.nn.Module:
    """Train ``build(num_classes=4)`` (the demo detector by default) on the shapes. With ``mask_of(c, [x, y, w, h])``,
    a function drawing an object's exact mask, the targets carry masks too (for a Mask R-CNN)."""
    torch.manual_seed(SEED)
    data = _tensors(shapes.samples(TRAIN_IMAGES, seed=SEED), mask_of)
    model = build(num_classes=len(shapes.CLASSES) + 1)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(SEED)
    for step in range(steps):
        idx = torch.randint(len(data), (BATCH,), generator=gen).tolist()
        images, targets = [], []
        for i in idx:
            image, target = data[i]
            if torch.rand((), generator=gen) < 0.5:  # horizontal flip
                image = image.flip(-1)
                boxes = target["boxes"].clone()
                boxes[:, [0, 2]] = shapes.SIZE - target["boxes"][:, [2, 0]]
                target = {**target, "boxes": boxes}
                if "masks" in target:
                    target["masks"] = target["masks"].flip(-1)
            images.append(image)
            targets.append(target)
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log and step % 50 == 0:
            log(f"step {step} loss {loss.item():.3f} " + " ".join(f"{k} {v.item():.3f}" for k, v in losses.items()))
    return model.eval()


def checkpoint(cache_dir: str | Path | None = None) -> Path:
    """The trained state dict (``.pth``): the shipped one while the training code is unchanged, else from the cache
    or trained now."""
    if shipped_path().is_file() and shipped_info().get("code_digest") == cache_key():
        return shipped_path()
    return cached("detector", cache_key(), train, cache_dir)


def cached(name: str, key: str, make, cache_dir: str | Path | None = None) -> Path:
    """``NAME-KEY.pth`` in the training cache: the state dict of ``make()``, trained once (under a file lock, so
    parallel sessions train once) and written atomically."""
    cache = settings.training_cache(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}-{key}.pth"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            save(make(), path)
    return path


def save(model: torch.nn.Module, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


CATEGORIES = ["__background__", *shapes.CLASSES]


class _Eager:
    """The trained model as coco_eval.evaluate calls a detector (numpy in, numpy out)."""
    categories, keys = CATEGORIES, ["boxes", "labels", "scores"]

    def __init__(self, model):
        self.model = model

    def __call__(self, images):
        with torch.no_grad():
            outs = self.model([torch.from_numpy(np.ascontiguousarray(im)) for im in images])
        return [{k: v.numpy() for k, v in o.items()} for o in outs]


def heldout_map(path: Path) -> float:
    """Box mAP (COCO, points) of eager PyTorch with the checkpoint on the held-out scenes."""
    import tempfile

    from ..coco_eval import evaluate, open_dataset
    from ..weights import read_checkpoint
    model = detector.build(num_classes=len(CATEGORIES))
    model.load_state_dict(read_checkpoint(path))
    with tempfile.TemporaryDirectory() as tmp:
        data = open_dataset(shapes.write_coco(tmp, HELDOUT_IMAGES, HELDOUT_SEED))
        return evaluate(_Eager(model.eval()), data, progress=False)["bbox"]["map"]


def describe(out: Path, seconds: float) -> dict:
    """Write ``out``'s sidecar JSON: what trained it, its sha256, its held-out mAP."""
    from ...core import store
    info = {"code_digest": cache_key(), "sha256": store.sha256_file(out), "steps": STEPS, "batch": BATCH,
            "train_images": TRAIN_IMAGES, "seed": SEED, "torch": torch.__version__, "train_seconds": round(seconds),
            "heldout": {"images": HELDOUT_IMAGES, "seed": HELDOUT_SEED, "box_map": heldout_map(out)},
            "command": "python -m zoo.build.demo.train"}
    out.with_suffix(".json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return info


def main(out: Path | None = None) -> None:
    import time
    out = Path(out or shipped_path())
    t0 = time.perf_counter()
    save(train(log=print), out)
    seconds = time.perf_counter() - t0
    print(json.dumps(describe(out, seconds), indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
