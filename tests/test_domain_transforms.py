"""The digits' input conversion (torch alone) gives torchvision v2's result bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from pipeline_lib.domains.transforms import to_model_tensor, to_uint8_images


def _torchvision(images: np.ndarray, channels: int, size: int) -> torch.Tensor:
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    colour = v2.Grayscale(num_output_channels=1) if channels == 1 else v2.RGB()
    compose = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Resize((size, size), antialias=True), colour,
                          v2.Normalize(mean=[0.5] * channels, std=[0.5] * channels)])
    return compose(batch).clamp_(-1.0, 1.0).contiguous()


@pytest.mark.parametrize("stored,channels,size", [
    ((28, 28, 1), 1, 28), ((28, 28, 1), 1, 32), ((16, 16, 1), 1, 28), ((28, 28, 1), 3, 32),
    ((32, 32, 3), 3, 32), ((32, 32, 3), 1, 28), ((32, 32, 3), 3, 28), ((40, 24, 3), 1, 32)])
def test_matches_torchvision_v2_exactly(stored, channels, size):
    images = np.random.default_rng(0).integers(0, 256, size=(7, *stored), dtype=np.uint8)
    ours = to_model_tensor(images, channels, size)
    assert ours.shape == (7, channels, size, size) and ours.dtype == torch.float32 and ours.is_contiguous()
    assert torch.equal(ours, _torchvision(images, channels, size))
    assert ours.min() >= -1 and ours.max() <= 1


def test_round_trip_through_uint8_is_exact_at_the_stored_size():
    images = np.random.default_rng(1).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8_images(to_model_tensor(images, 3, 32)), images)
