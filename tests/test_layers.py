"""The package's layering (docs/architecture.md): every import of every module, function-level ones included, read
with ast; no cycle between modules and no import against the arrows. Cheap: no zoo module is imported."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zoo"

# What each layer may import besides itself. errors <- core <- models <- load <- (build, publish, ops) <- cli; export and
# serve sit beside build and load. "api" is the package root (zoo/__init__.py: the public surface).
ALLOWED = {
    "errors": set(),
    "core": {"errors"},
    "models": {"errors", "core"},                     # the package's own model code (zoo.models.detectron2)
    "load": {"errors", "core", "models"},
    "api": {"errors", "core", "load"},
    "export": {"errors", "core", "load", "models"},   # the export child builds the eager model (load.architecture)
    "serve": {"errors", "core", "load", "api"},
    "ops": {"errors", "core", "load"},
    "build": {"errors", "core", "load", "export", "ops", "serve", "models"},  # ops.viz reads eval images, serve.require_ray
    "publish": {"errors", "core", "load", "build"},   # a release builds before it publishes
    "cli": {"errors", "core", "load", "api", "export", "serve", "ops", "build", "publish", "models"},
}
NO_TORCH_OR_NETWORK = ("torch", "torchvision", "requests", "huggingface_hub", "urllib.request", "socket", "http")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return "errors" if parts[1] == "errors" else parts[1]


def imports(module: str) -> list[tuple[str, int, str]]:
    """(imported module, line, imported top-level name) for every import in ``module``, at any depth."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:  # `from . import store` imports the submodule zoo.core.store
                sub = f"{target}.{a.name}"
                found.append((sub if sub in MODULES else target, node.lineno, target.split(".")[0]))
    return found


def zoo_edges() -> dict[str, set[str]]:
    return {m: {t for t, _, top in imports(m) if top == "zoo"} for m in MODULES}


def test_every_import_of_zoo_names_a_module_that_exists():
    bad = [f"{MODULES[m]}:{line}: {t}" for m in MODULES for t, line, top in imports(m) if top == "zoo"
           and t not in MODULES]
    assert not bad, "imports of modules that do not exist:\n" + "\n".join(bad)


def test_every_module_is_in_a_layer():
    assert {layer(m) for m in MODULES} <= set(ALLOWED), sorted({layer(m) for m in MODULES} - set(ALLOWED))


def test_imports_follow_the_arrows():
    wrong = []
    for m in MODULES:
        for t, line, top in imports(m):
            if top == "zoo" and t in MODULES and layer(t) != layer(m) and layer(t) not in ALLOWED[layer(m)]:
                wrong.append(f"{MODULES[m].relative_to(PACKAGE.parent)}:{line}: {m} ({layer(m)}) imports {t} "
                             f"({layer(t)})")
    assert not wrong, "imports against the layering (see docs/architecture.md):\n" + "\n".join(wrong)


def test_no_import_cycle():
    edges = zoo_edges()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if t == m or t not in MODULES:
                continue
            if state.get(t) == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_core_and_errors_import_no_torch_and_no_network_client():
    wrong = [f"{m}: {t}" for m in MODULES if layer(m) in ("core", "errors") for t, _, top in imports(m)
             if top != "zoo" and t.startswith(NO_TORCH_OR_NETWORK)]
    assert not wrong, wrong


@pytest.mark.parametrize("modules", ["zoo", "zoo, zoo.cli, zoo.core.manifest, zoo.core.store, zoo.load.loader"])
def test_import_zoo_does_not_import_torch(modules):
    code = f"import sys, {modules}; print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


def test_the_layering_test_sees_a_wrong_import(tmp_path, monkeypatch):
    """The checks above read what they claim to: a core module importing the loader is caught, and so is a cycle."""
    fake = tmp_path / "zoo"
    (fake / "core").mkdir(parents=True)
    (fake / "load").mkdir()
    for p in (fake / "__init__.py", fake / "core" / "__init__.py", fake / "load" / "__init__.py"):
        p.write_text("")
    (fake / "core" / "a.py").write_text("def f():\n    from ..load import b\n")
    (fake / "load" / "b.py").write_text("from ..core import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    monkeypatch.setattr(sys.modules[__name__], "MODULES", {module_name(p): p for p in sorted(fake.rglob("*.py"))})
    with pytest.raises(AssertionError, match=r"zoo.core.a \(core\) imports zoo.load.b \(load\)"):
        test_imports_follow_the_arrows()
    with pytest.raises(AssertionError, match="zoo.core.a -> zoo.load.b -> zoo.core.a"):
        test_no_import_cycle()


def test_every_directory_of_modules_is_a_package():
    """setuptools finds only directories with an __init__.py: one without would be missing from the wheel."""
    missing = [str(d.relative_to(PACKAGE.parent)) for d in [PACKAGE, *PACKAGE.rglob("*")] if d.is_dir()
               and any(d.glob("*.py")) and not (d / "__init__.py").is_file()]
    assert not missing, missing


def test_the_public_surface():
    """zoo.load is loader.load itself (whatever zoo.load.* module is imported later, the name stays the function),
    zoo.Detector is what it returns, and every error class in zoo.errors is exported from zoo."""
    code = ("import inspect, pkgutil, importlib, sys, zoo, zoo.errors\n"
            "pkg = sys.modules['zoo.load']  # the package; the attribute zoo.load is the function\n"
            "from zoo.load.loader import load\n"
            "for m in pkgutil.walk_packages(pkg.__path__, 'zoo.load.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert zoo.load is load, zoo.load\n"
            "from zoo.load.runtimes.base import Detector\n"
            "assert zoo.Detector is Detector and inspect.signature(zoo.load).return_annotation == 'Detector'\n"
            "errors = {n for n, c in vars(zoo.errors).items() if isinstance(c, type) and issubclass(c, zoo.ZooError)}\n"
            "assert errors <= set(zoo.__all__) and all(getattr(zoo, n) is getattr(zoo.errors, n) for n in errors), errors\n"
            "print(len(errors))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 12
