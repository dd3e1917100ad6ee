"""Feature discriminators: each spatial location of a feature map is one sample.

CyCADA's feature discriminator (Fig. 7, mid left; appendix 6.1.1) is 3 fully connected
layers (500-500-out in the authors' release). Written with 1 x 1 convolutions it applies
unchanged to vectors (N x C, viewed as N x C x 1 x 1) and to feature maps (N x C x H x W),
which GAM's per-layer discriminators and the segmentation track need.
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureDiscriminator(nn.Module):
    def __init__(self, in_channels: int, hidden: int = 500, n_layers: int = 3, out_channels: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for _ in range(n_layers - 1):
            layers += [nn.Conv2d(ch, hidden, 1), nn.ReLU(True)]
            ch = hidden
        layers.append(nn.Conv2d(ch, out_channels, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of shape (N, out_channels, H, W); a vector input gives (N, out_channels, 1, 1)."""
        if h.dim() == 2:
            h = h[:, :, None, None]
        return self.net(h)
