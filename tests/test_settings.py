"""The environment is read in one module (zoo/core/settings.py), with one meaning per variable."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from zoo.core import settings

PACKAGE = Path(__file__).resolve().parent.parent / "zoo"
# still read where they are used, in code other open work is rewriting (see docs/architecture.md)
# export/ hands the export child its environment and the parent's pid (and export/run.py checks it before it imports
# anything): the only reads outside zoo/core/settings.py; export/int8.py writes NNCF's telemetry switch (NNCF_CI) in the
# export child before it imports NNCF, and reads nothing
ELSEWHERE = {"zoo/export/__init__.py": {"environ"}, "zoo/export/run.py": {"ZOO_EXPORT_PARENT"},
             "zoo/export/int8.py": {"environ"}}


def environment_reads(path: Path) -> set[str]:
    """The variable names (or 'environ' for the whole mapping) a module reads from os.environ / os.getenv."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
                getattr(node.value, "id", None) == "os":
            found.add("environ")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"(ZOO|HF)_[A-Z_]+", node.value):
            found.add(node.value)
    return found if "environ" in found else set()


def test_only_settings_reads_the_environment():
    wrong = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        if rel == "zoo/core/settings.py" or path.name == "patches.py":
            continue
        extra = environment_reads(path) - ELSEWHERE.get(rel, set()) - {"environ"}
        if environment_reads(path) and (extra or rel not in ELSEWHERE):
            wrong[rel] = sorted(extra)
    assert not wrong, f"modules reading the environment themselves (use zoo.core.settings): {wrong}"


@pytest.mark.parametrize("value", ["", None])
def test_an_empty_or_unset_zoo_home_is_the_default_everywhere(value, monkeypatch, tmp_path):
    """ZOO_HOME="" meant ./official for official checkpoints and ~/.cache/zoo elsewhere; now ~/.cache/zoo for both."""
    from zoo.build import weights
    from zoo.core.manifest import resolve
    from zoo.load import transport

    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("ZOO_HOME", raising=False)
    else:
        monkeypatch.setenv("ZOO_HOME", value)
    assert settings.default_home() == tmp_path / ".cache" / "zoo"
    asked = []

    def fake_download(url, path, sha, progress=True):
        asked.append(Path(path))
        raise RuntimeError("no network in this test")

    monkeypatch.setattr(weights, "torch_hub_checkpoint", lambda url, sha: (None, None))
    monkeypatch.setattr(transport, "download", fake_download)
    m = resolve("ssdlite")
    with pytest.raises(RuntimeError, match="no network"):
        weights.official_model(m, progress=False)
    assert asked == [tmp_path / ".cache" / "zoo" / "official" / m.weights["url"].rsplit("/", 1)[-1]]


@pytest.mark.parametrize("text, expected", [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("", False),
                                            ("no", False)])
def test_a_yes_no_variable_reads_the_same_for_every_flag(text, expected, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", text)
    monkeypatch.setenv("HF_HUB_OFFLINE", text)
    assert settings.is_offline() is expected and settings.hf_offline() is expected
    assert settings.is_offline(False) is False and settings.is_offline(True) is True


def test_empty_values_mean_unset(monkeypatch):
    for name in ("ZOO_SOURCE", "ZOO_CHANNEL", "HF_ENDPOINT", "ZOO_MANIFESTS"):
        monkeypatch.setenv(name, "")
    assert settings.source_spec() is None and settings.channel_file() is None and settings.hf_endpoint() is None
    assert settings.manifests_dir() is None
    monkeypatch.setenv("ZOO_CHANNEL", "~/ch.toml")
    assert settings.channel_file() == Path("~/ch.toml").expanduser()
