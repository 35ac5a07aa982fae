"""Train the detectors of ``detector.py`` on ``shapes.py`` data, for real, and cache the checkpoints: the Faster R-CNN
(``build``) and the Mask R-CNN (``build_mask``, trained on the shapes' exact masks).

The cache key is the sha256 of the three modules' sources and torch's version: change the training code and the next
session retrains. ``$ZOO_TEST_CACHE`` (default ``~/.cache/zoo-tests``) holds ``detector-<key>.pth`` and
``mask-<key>.pth`` (state dicts, written atomically under a file lock, so parallel sessions train once)."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from . import detector, shapes

STEPS, BATCH, TRAIN_IMAGES, SEED = 900, 4, 400, 0
MASK_STEPS = 700  # the mask model: its heads cost more per step; ~2 minutes here like the detector's
BUILDERS = {"detector": detector.build, "mask": detector.build_mask}


def cache_key() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    for module in (shapes, detector, sys.modules[__name__]):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def _tensors(data, masks: bool = False):
    out = []
    for im, objects in data:
        image = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()
        boxes = torch.tensor([[x, y, x + w, y + h] for _, (x, y, w, h), _ in objects], dtype=torch.float32)
        labels = torch.tensor([c + 1 for c, _, _ in objects], dtype=torch.int64)
        target = {"boxes": boxes, "labels": labels}
        if masks:
            target["masks"] = torch.from_numpy(np.stack([shapes.mask(c, box) for c, box, _ in objects]))
        out.append((image, target))
    return out


def train(steps: int = STEPS, log=None, kind: str = "detector") -> torch.nn.Module:
    torch.manual_seed(SEED)
    data = _tensors(shapes.samples(TRAIN_IMAGES, seed=SEED), masks=kind == "mask")
    model = BUILDERS[kind](num_classes=len(shapes.CLASSES) + 1)
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


def checkpoint(cache_dir: str | Path | None = None, kind: str = "detector") -> Path:
    """The trained state dict (``.pth``) of ``kind`` ("detector" or "mask"), from the cache or trained now."""
    cache = Path(cache_dir or os.environ.get("ZOO_TEST_CACHE") or Path.home() / ".cache" / "zoo-tests")
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{kind}-{cache_key()}.pth"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            model = train(MASK_STEPS if kind == "mask" else STEPS, kind=kind)
            tmp = path.with_suffix(".tmp")
            torch.save(model.state_dict(), tmp)
            os.replace(tmp, path)
    return path


if __name__ == "__main__":  # python -m trained.train [STEPS [detector|mask]]: train with a loss log
    import time
    t0 = time.perf_counter()
    which = sys.argv[2] if len(sys.argv) > 2 else "detector"
    m = train(int(sys.argv[1]) if len(sys.argv) > 1 else STEPS, log=print, kind=which)
    print(f"trained in {time.perf_counter() - t0:.0f}s")
    torch.save(m.state_dict(), f"/tmp/own-{which}.pth")
