"""The README's first-run paths, run as the README prints them (its blocks are read from README.md, so they cannot
drift): the one-command build into the local store, and the air-gapped download / import / load inside a network
namespace with only loopback (`unshare -n`, needs root). Plus the error a load with nowhere to look gives."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NETNS = shutil.which("unshare") is not None and os.geteuid() == 0
needs_netns = pytest.mark.skipif(not NETNS, reason="needs root for `unshare -n` (a network namespace)")


def readme_block(name: str) -> list[str]:
    """The command lines of the README block marked ``<!-- readme-block:NAME -->`` (comments and all)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- readme-block:{re.escape(name)} -->\n```\w+\n(.*?)```", text, re.DOTALL)
    assert found, f"README.md has no block marked readme-block:{name}"
    return [line for line in found.group(1).splitlines() if line.strip()]


def shell(line: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """One README line in bash, as a user runs it, with no network at all and ZOO_HOME=home."""
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_SOURCE", "ZOO_CHANNEL", "ZOO_OFFLINE", "ZOO_HOME")}
    env.update(ZOO_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(["unshare", "-n", "bash", "-e", "-c", line], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)
    assert proc.returncode == 0, f"README line failed ({proc.returncode}): {line}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def one_command(tmp_path_factory, pytestconfig):
    """The README's one-command path, verbatim, into a fresh ZOO_HOME (its build is SSDlite ONNX, ~10-70 s)."""
    from conftest import building
    home, cwd = tmp_path_factory.mktemp("home-connected"), tmp_path_factory.mktemp("cwd")
    build, load = readme_block("one-command")
    with building(pytestconfig, f"the README's one-command store: {build.split('#')[0].strip()}"):
        shell(build, home, cwd)
    return home, shell(load, home, cwd).stdout


@needs_netns
def test_one_command_path_loads_from_the_local_store(one_command):
    home, out = one_command
    assert out.strip() == f"local store -> your local store {home / 'store'}"
    assert (home / "store" / "index.json").is_file()


@needs_netns
def test_air_gapped_recipe_verbatim(one_command, tmp_path):
    """download on the 'connected' machine (its local store), import + the plain call on a fresh one, all offline;
    the imported files are listed as used and prune keeps them."""
    connected, _ = one_command
    download, import_, load = readme_block("air-gapped")
    gapped = tmp_path / "home-gapped"
    shell(download, connected, tmp_path)
    assert "no source now loads these offline: ssdlite320_mobilenet_v3_large" in shell(import_, gapped, tmp_path).stdout
    shutil.rmtree(tmp_path / "bundle")  # the call uses the cache, not the bundle left behind
    shell(load, gapped, tmp_path)
    listed = shell("zoo cache list", gapped, tmp_path).stdout
    assert "no recorded index" not in listed and listed.count("ssdlite320_mobilenet_v3_large ") == 5, listed
    pruned = shell("zoo cache prune", gapped, tmp_path).stdout
    assert "freed 0B in 0 blob(s)" in pruned, pruned
    shell(load, gapped, tmp_path)  # still loads after a real prune


def test_nowhere_to_look_names_the_build_command(tmp_path, monkeypatch):
    import zoo
    for k in ("ZOO_SOURCE", "ZOO_CHANNEL", "ZOO_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    with pytest.raises(zoo.NotAvailableError) as e:
        zoo.load("mask_rcnn", runtime="onnxruntime")
    text = str(e.value)
    assert "`zoo build maskrcnn_resnet50_fpn`" in text and "--weights random:0" in text and str(tmp_path / "store") in text
    with pytest.raises(zoo.UnknownModelError) as e:  # the typo check comes first
        zoo.load("mask_rcn", runtime="onnxruntime")
    assert "did you mean 'mask_rcnn'" in str(e.value) and "zoo build" in str(e.value)


def test_offline_build_into_the_local_store_says_what_to_do(tmp_path):
    """`zoo build NAME` with no --out wants official weights; with no network it says how to build with seeded ones."""
    if not NETNS:
        pytest.skip("needs root for `unshare -n` (a network namespace)")
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_SOURCE", "ZOO_CHANNEL")}
    env.update(ZOO_HOME=str(tmp_path), PYTHONPATH=str(REPO), ZOO_HTTP_TIMEOUT="5")
    proc = subprocess.run(["unshare", "-n", "zoo", "build", "ssdlite", "--method", "onnx", "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert f"into your local store {tmp_path / 'store'}" in proc.stdout and "official weights" in proc.stdout
    assert "no network? `zoo build ssdlite --method onnx --weights random:0`" in proc.stdout, proc.stdout


@needs_netns
def test_seeded_weights_warn_once_per_model(one_command, monkeypatch):
    import zoo
    from zoo.load import loader
    home, _ = one_command
    monkeypatch.setattr(loader, "_WARNED", set())
    for k in ("ZOO_SOURCE", "ZOO_CHANNEL"):
        monkeypatch.delenv(k, raising=False)
    with pytest.warns(zoo.errors.SeededWeightsWarning, match="seeded random weights .* meaningless") as caught:
        zoo.load("ssdlite", cache_dir=home)
        zoo.load("ssdlite", cache_dir=home)
    assert len([w for w in caught if issubclass(w.category, zoo.errors.SeededWeightsWarning)]) == 1


def test_drop_in_snippet_runs_as_written(light_store, tmp_path):
    """The README's drop-in block, verbatim, in a fresh process from the repository root, the model from ZOO_SOURCE."""
    import sys
    code = "\n".join(readme_block("drop-in")) + "\nprint(len(prediction['boxes']), tuple(drawn.shape))\n"
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_CHANNEL",)}
    env.update(ZOO_SOURCE=str(light_store), ZOO_HOME=str(tmp_path), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, shape = proc.stdout.split(" ", 1)
    assert count.isdigit() and shape.strip() == "(3, 512, 512)"
