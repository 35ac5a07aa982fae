"""Write manifests/detectron2/ (detectron2's COCO model zoo entries as zoo manifests) from detectron2's configs, and
print docs/detectron2.md's table of them.

    PYTHONPATH=$PWD python3 tools/d2_model_zoo.py [--configs tests/fixtures/d2] [--out manifests/detectron2]

``--configs``: a detectron2 source tree, or a folder holding copies of its ``configs/`` and
``projects/PointRend/configs/`` (the default: the fixtures' verbatim copies). The entries, their checkpoint URLs and
published AP are zoo.build.d2convert.modelzoo.ENTRIES. Needs the build extra (torch), not detectron2.
"""
import argparse
from pathlib import Path

from zoo.build.d2convert import modelzoo

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=Path, default=REPO / "tests" / "fixtures" / "d2")
    ap.add_argument("--out", type=Path, default=REPO / "manifests" / "detectron2")
    a = ap.parse_args()
    for path in modelzoo.write_all(a.configs, a.out):
        print(f"wrote {path}")
    print()
    print(modelzoo.markdown(a.out.parent))


if __name__ == "__main__":
    main()
