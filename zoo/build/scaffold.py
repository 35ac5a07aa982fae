"""`zoo new-manifest`: a starting manifest for a model of your own, from the shipped manifest of the same torchvision
builder (or, for your own ``package.module:function``, from a small Faster R-CNN's), written as TOML. Its outputs are
read from the model the builder makes (masks for a Mask R-CNN, keypoints for a Keypoint R-CNN)."""
from __future__ import annotations

import copy
from pathlib import Path

from ..errors import ManifestError
from ..core import toml
from ..core.manifest import from_dict, templates

GENERIC = "fasterrcnn_mobilenet_v3_large_320_fpn"  # the template for builders that are not torchvision's
COPIED = ("family", "outputs", "input", "parity", "export", "unsupported")


def manifest_doc(name: str, builder: str, num_classes: int | None = None, categories: list[str] | None = None,
                 builder_args: dict | None = None, template_name: str | None = None) -> dict:
    """``builder_args`` beyond num_classes; ``template_name``: the shipped manifest to start from (default: the one of
    the same builder, else the small Faster R-CNN's)."""
    shipped = {m.builder: m for m in templates().values()}
    template = templates()[template_name] if template_name else shipped.get(builder) or templates()[GENERIC]
    if categories is None:
        categories = ["__background__"] + [f"class{i}" for i in range(1, (num_classes or 2))]
    if num_classes is not None and num_classes != len(categories):
        raise ManifestError(f"--num-classes {num_classes} counts the background, so it must equal the number of "
                            f"categories ({len(categories)}: {', '.join(categories)})")
    doc = {"name": name, "family": template.family, "builder": builder,
           "description": f"{name}: a detector of your own ({builder}).", "outputs": list(template.outputs)}
    if num_classes is not None or builder_args:
        doc["builder_args"] = {**({"num_classes": num_classes} if num_classes is not None else {}), **(builder_args or {})}
    doc["weights"] = {"categories": categories}
    # copies: the template is a cached manifest whose tables every later caller shares
    doc.update({k: copy.deepcopy(template.raw[k]) for k in COPIED[2:] if k in template.raw})
    if builder in shipped:  # same architecture: its seeded-weights recipe applies (--weights random:SEED)
        doc["random_weights"] = copy.deepcopy(template.raw["random_weights"])
    doc["eval"] = {"map_tolerance": 0.1}
    doc["outputs"] = inferred_outputs(doc)
    return doc


def inferred_outputs(doc: dict) -> list[str]:
    """The keys the model returns, from the model the builder makes once (no weights; a Mask R-CNN adds masks, a
    Keypoint R-CNN keypoints and keypoints_scores)."""
    import importlib

    from ..load import architecture  # torch
    module = doc["builder"].partition(":")[0] if ":" in doc["builder"] else doc["builder"].rpartition(".")[0]
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise ManifestError(f"--builder {doc['builder']}: {module} cannot be imported ({e}); zoo new-manifest makes the "
                            "model once to read what it returns (the manifest's outputs): install its package or put "
                            "it on PYTHONPATH, then run it again") from None
    model = architecture.make(from_dict(doc, f"the manifest for {doc['name']}", ""))
    return architecture.returned_outputs(model)


def write(name: str, builder: str, out: str | Path, num_classes: int | None = None,
          categories: list[str] | None = None, force: bool = False) -> dict:
    """Write the manifest; returns what was written (the document)."""
    out = Path(out)
    if out.exists() and not force:
        raise ManifestError(f"{out} exists; pick another --out or pass --force")
    return write_doc(manifest_doc(name, builder, num_classes, categories), out)


def write_doc(doc: dict, out: Path) -> dict:
    """Write a manifest document as TOML, once it parses as a manifest (the name, the builder's spelling, ...)."""
    text = toml.dumps(doc)
    from_dict(doc, str(out), "")
    out.write_text(text, encoding="utf-8")
    return doc
