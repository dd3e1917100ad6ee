"""Convert stored uint8 images to a backbone's input: size, channels, range [-1, 1].

The same operations as torchvision's ``v2.Compose([ToDtype(float32, scale=True), Resize(size, antialias=True),
Grayscale(1) | RGB(), Normalize(0.5, 0.5)])``, written with torch alone: importing torchvision costs about
2 s per stage process (``torchvision.ops`` imports ``torch._dynamo``), and every digits stage converts its
splits here. ``tests/test_domain_transforms.py`` checks the two agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, C, H, W) float with C in {1, 3} -> ``channels`` (1: luma; 3: grey repeated)."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return x.repeat(1, 3, 1, 1)
    r, g, b = x.unbind(dim=1)
    return r.mul(GREY_WEIGHTS[0]).add_(g, alpha=GREY_WEIGHTS[1]).add_(b, alpha=GREY_WEIGHTS[2]).unsqueeze(1)


def to_model_tensor(images: np.ndarray, channels: int, size: int) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, channels, size, size) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32).mul_(1.0 / 255)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=[size, size], mode="bilinear", align_corners=False, antialias=True)
    x = _to_channels(x, channels)
    return x.sub(0.5).div_(0.5).clamp_(-1.0, 1.0).contiguous()


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [-1, 1] -> uint8 (N, H, W, C): how translated images are stored."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
