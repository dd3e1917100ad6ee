"""Convert stored uint8 images to a backbone's input: size, channels, range [-1, 1].

Uses torchvision transforms v2, which treat leading dimensions as a batch, so a whole
digit split converts in one call.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.transforms import v2


def model_input_transform(channels: int, size: int) -> v2.Compose:
    colour = v2.Grayscale(num_output_channels=1) if channels == 1 else v2.RGB()
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),
        v2.Resize((size, size), antialias=True),
        colour,
        v2.Normalize(mean=[0.5] * channels, std=[0.5] * channels),
    ])


def to_model_tensor(images: np.ndarray, channels: int, size: int) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, channels, size, size) in [-1, 1]."""
    batch = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return model_input_transform(channels, size)(batch).clamp_(-1.0, 1.0).contiguous()


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C): how translated images are stored."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
