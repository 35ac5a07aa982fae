"""What a loaded model accepts: PIL images converted exactly as torchvision's to_tensor does, and one hint that fixes
layout, dtype and channels at once for the common near-misses. Input checks only: no model is needed."""
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from zoo.errors import InputError
from zoo.load.runtimes.inputs import check_images

PICTURE = Image.open(__import__("zoo").__file__.rsplit("/", 1)[0] + "/data/astronaut.jpg")


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "1"])
def test_pil_images_become_what_to_tensor_makes(mode):
    im = PICTURE.convert(mode).resize((97, 64))
    (got,), kind = check_images([im])
    assert kind == "numpy" and got.dtype == np.float32
    assert np.array_equal(got, to_tensor(im.convert("RGB")).numpy())  # bit for bit


CASES = [np.zeros((50, 60, 3), np.uint8), torch.zeros(50, 60, 3, dtype=torch.uint8), np.full((50, 60), 7, np.uint8),
         torch.rand(1, 50, 60), torch.zeros(50, 60, 1, dtype=torch.uint8), torch.zeros(3, 50, 60, dtype=torch.uint8),
         np.random.rand(50, 60, 3).astype(np.float32), torch.zeros(50, 60)]


@pytest.mark.parametrize("image", CASES, ids=lambda x: f"{type(x).__module__.split('.')[0]}-{list(x.shape)}-{x.dtype}")
def test_one_hint_fixes_layout_dtype_and_channels_at_once(image):
    with pytest.raises(InputError) as e:
        check_images([image])
    text = str(e.value)
    assert text.count("convert: ") == 1, text
    fix = text.split("convert: ", 1)[1].rsplit(")", 1)[0]
    fixed = eval(fix, {"image": image, "np": np})  # the hint, applied as written
    (out,), kind = check_images([fixed])  # accepted on the first retry
    assert tuple(out.shape) == (3, 50, 60) and kind == ("torch" if isinstance(image, torch.Tensor) else "numpy")
    assert float(out.max()) <= 1.0


def test_a_mix_of_pil_and_arrays_is_refused():
    with pytest.raises(InputError, match="a mix of PIL, numpy"):
        check_images([PICTURE, np.zeros((3, 5, 5), np.float32)])


def test_an_array_is_checked_while_another_thread_is_still_importing_pil(monkeypatch):
    """Ray Serve's replica decodes its first PNG in one thread (importing PIL.Image) while another checks a .npy
    request's array: sys.modules then holds PIL.Image without its attributes yet. That was a 500
    (AttributeError: partially initialized module 'PIL.Image'); the array is an array all the same."""
    import sys
    import types
    half = types.ModuleType("PIL.Image")  # what another thread's import leaves in sys.modules until it finishes
    monkeypatch.setitem(sys.modules, "PIL.Image", half)
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    image = np.random.default_rng(0).random((3, 8, 10), dtype=np.float32)
    images, kind = check_images([image])
    assert kind == "numpy" and np.array_equal(images[0], image)
