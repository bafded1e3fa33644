"""The training blur is PIL's GaussianBlur(radius=σ), σ ~ U[0.1, 2.0], at every image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage import data
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from lewel.views import augmented_view
from lewel.views.augmentations import PILGaussianBlur, byol_photometric, mocov2_photometric

SIGMAS = (0.1, 0.35, 0.8, 1.4, 2.0)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _blurs(transform: v2.Compose) -> list[PILGaussianBlur]:
    found = [t for t in transform.transforms if isinstance(t, v2.RandomApply)]
    return [inner for t in found for inner in t.transforms if isinstance(inner, PILGaussianBlur)]


@pytest.mark.parametrize("size", [64, 224])
def test_blur_is_pils_on_images_and_tensors(astronaut, size):
    image = astronaut.resize((size, size), Image.BICUBIC)
    tensor = tv_tensors.Image(F.pil_to_tensor(image))
    for sigma in SIGMAS:
        blur = PILGaussianBlur((sigma, sigma))
        expected = np.asarray(image.filter(ImageFilter.GaussianBlur(radius=sigma))).astype(int)
        from_pil = np.asarray(blur(image)).astype(int)
        from_tensor = blur(tensor)
        assert isinstance(from_tensor, tv_tensors.Image) and from_tensor.dtype == torch.uint8
        interior = (slice(8, -8), slice(8, -8))
        assert np.abs(from_pil - expected)[interior].max() <= 1
        assert np.abs(from_tensor.permute(1, 2, 0).numpy().astype(int) - expected)[interior].max() <= 1
        assert np.array_equal(from_tensor.permute(1, 2, 0).numpy(), from_pil)  # the same pixels everywhere


def test_wide_sigma_reaches_beyond_the_old_fixed_kernel():
    """σ = 2 blurs beyond ±3 px at 64 px (the old kernel was 10 % of the side: 7 taps there)."""
    impulse = torch.zeros(1, 64, 64, dtype=torch.uint8)
    impulse[0, 32, 32] = 255
    blurred = PILGaussianBlur((2.0, 2.0))(impulse)
    assert blurred.shape == impulse.shape and blurred.dtype == torch.uint8
    assert blurred[0, 32, 36] > 0 and blurred[0, 32, 28] > 0


def test_sigma_is_drawn_uniformly_from_its_range():
    blur = PILGaussianBlur()
    torch.manual_seed(0)
    sigmas = [blur.make_params([])["sigma"] for _ in range(2000)]
    assert 0.1 <= min(sigmas) < 0.15 and 1.95 < max(sigmas) <= 2.0
    assert np.mean(sigmas) == pytest.approx(1.05, abs=0.03)
    with pytest.raises(ValueError, match="sigma"):
        PILGaussianBlur((0.0, 1.0))


def test_blur_refuses_float_tensors_and_leaves_other_tv_tensors():
    blur = PILGaussianBlur((1.0, 1.0))
    with pytest.raises(TypeError, match="uint8"):
        blur.transform(torch.rand(3, 8, 8), {"sigma": 1.0})
    mask = tv_tensors.Mask(torch.ones(8, 8, dtype=torch.uint8))
    assert blur.transform(mask, {"sigma": 1.0}) is mask


def test_presets_use_the_pil_blur_with_their_probabilities():
    for transform, probability in ((byol_photometric(blur=1.0, solarize=0.0), 1.0),
                                   (byol_photometric(blur=0.1, solarize=0.2), 0.1), (mocov2_photometric(), 0.5)):
        (blur,) = _blurs(transform)
        assert blur.sigma == (0.1, 2.0)
        assert [t.p for t in transform.transforms if isinstance(t, v2.RandomApply) and blur in t.transforms] == [probability]


def test_a_blurred_view_is_reproducible(astronaut):
    first = augmented_view(astronaut, "byol1", 64, seed=3, index=2)
    again = augmented_view(astronaut, "byol1", 64, seed=3, index=2)
    assert torch.equal(first.image, again.image) and first.image.dtype == torch.uint8
