"""TorchScript debug records name source files relative to their import root, and the artifact still explains errors."""
import inspect
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from zoo.export.common import save_torchscript
from zoo.export.relocate import import_roots, relocate_record

HERE = Path(__file__).resolve().parent


class Halves(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(2, -1).sum(1)


LINE = inspect.getsourcelines(Halves.forward)[1] + 1  # the reshape


def saved(module, tmp_path):
    path = tmp_path / "model.pt"
    save_torchscript(module, str(path))
    with zipfile.ZipFile(path) as z:
        data = b"".join(z.read(name) for name in z.namelist())
    assert str(HERE).encode() not in data
    assert not [root for root in import_roots() if root.encode() in data]
    return torch.jit.load(str(path))


@pytest.mark.parametrize("method", ["trace", "script"])
def test_saved_archive_names_sources_relative_and_still_explains_errors(method, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.trace(Halves(), torch.zeros(4)) if method == "trace" else torch.jit.script(Halves())
    loaded = saved(module, tmp_path)
    assert torch.equal(loaded(torch.arange(4.0)), torch.tensor([1.0, 5.0]))
    with pytest.raises(RuntimeError) as error:
        loaded(torch.zeros(3))
    message = str(error.value)
    original = message.split("original code", 1)[1]
    if method == "trace":
        # the Python stack at trace time, each frame relative to its root, down to the module's own code; the frames
        # of torch.jit.trace and of the code that called it are cut
        frames = original.split("\n")[1:]
        assert frames[0] == f"test_relocate.py({LINE}): forward" and frames[1].startswith("torch/nn/modules/module.py(")
        assert "_trace.py" not in original and "test_saved_archive" not in original
    else:
        assert f'File "test_relocate.py", line {LINE}' in original and "x.reshape(2, -1)" in original
    assert str(HERE) not in message


def test_relocating_twice_changes_nothing_more(tmp_path):
    path = tmp_path / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_torchscript(torch.jit.trace(Halves(), torch.zeros(4)), str(path))
    with zipfile.ZipFile(path) as z:
        records = [z.read(n) for n in z.namelist() if n.endswith(".debug_pkl")]
    assert records and all(relocate_record(r, import_roots()) == r for r in records)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no scratch left beside it


def test_import_roots_include_packages_mapped_outside_sys_path():
    """An editable install maps the package with a finder, not through sys.path: its folder is a root all the same."""
    import zoo
    roots = import_roots(["/nowhere"])
    assert str(Path(zoo.__file__).resolve().parent.parent) + "/" in roots
    assert "/nowhere/" in roots and roots == sorted(roots, key=len, reverse=True)
