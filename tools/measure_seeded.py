"""The seeded weights' eager outputs on the build's parity images (the content ones), as a markdown table.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python3 tools/measure_seeded.py [NAME...] [--seed 0]
    PYTHONPATH=$PWD python3 tools/measure_seeded.py --store STORE     # the figures a seeded build recorded
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python3 tools/measure_seeded.py --photos   # on the shipped photos instead
    PYTHONPATH=$PWD python3 tools/measure_seeded.py mask_rcnn_R_50_FPN_3x   # a detectron2 model zoo entry (by name)

One row per model: detections per image, distinct labels over the images, tied scores per image, score range, and
what zoo.trainedlike finds missing (empty: the build accepts the weights). Eager only; takes a few minutes for all 12.
"""
import argparse
import json
from pathlib import Path

from zoo.build import trainedlike
from zoo.core.manifest import all_manifests, resolve

PHOTOS = ("astronaut", "chelsea", "coffee")  # zoo/data: public-domain / CC0 photos (zoo/data/README.md)


def eager_figures(manifest, seed: int, photos: bool = False) -> dict:
    import torch

    from zoo.build import pipeline, weights
    from zoo.ops.viz import read_image
    if not photos:
        return pipeline.seeded_figures(manifest, seed)  # as the build measures them
    model = weights.random_model(manifest, seed)[0].eval()
    data = Path(__file__).resolve().parent.parent / "zoo" / "data"
    images = [read_image(data / f"{name}.jpg") for name in PHOTOS]  # float32 in [0, 1]
    with torch.no_grad():
        outputs = [{k: v.numpy() for k, v in model([torch.from_numpy(im)])[0].items()} for im in images]
    return trainedlike.summary(outputs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", help="read the figures from this store's index instead of running eager")
    ap.add_argument("--photos", action="store_true", help=f"on the photos {', '.join(PHOTOS)} instead of the parity images")
    a = ap.parse_args()
    manifests = all_manifests()
    index = json.loads((Path(a.store) / "index.json").read_text())["models"] if a.store else {}
    print("| model | detections per image | distinct labels | tied scores per image | score range | criteria |")
    print("|---|---|---|---|---|---|")
    for name in a.names or sorted(index or manifests):
        m = manifests.get(name) or resolve(name)  # a detectron2 model zoo entry by name
        f = index[name]["score_spread"] if a.store else eager_figures(m, a.seed, a.photos)
        missed = trainedlike.failures(f, len(m.categories))
        print(f"| {name} | {', '.join(str(im['detections']) for im in f['images'])} | {len(f['labels'])} "
              f"| {', '.join(str(im['tied']) for im in f['images'])} | {f['score_min']} .. {f['score_max']} "
              f"| {'ok' if not missed else '; '.join(x.split(':')[0] + ':' + x.split(':')[1] for x in missed)} |",
              flush=True)


if __name__ == "__main__":
    main()
