"""Image-to-image networks for pixel-level adaptation (CycleGAN, Zhu et al. 2017, as used by CyCADA).

- :class:`ResnetGenerator`: convolutions (stride-2 downsampling) -> residual blocks ->
  transposed convolutions -> tanh. CyCADA's digit generator (Fig. 7, right) has two residual
  blocks; CycleGAN's default (used for GTA5 -> Cityscapes) has 9.
- :class:`ImageDiscriminator`: a stack of convolutions ending in one score per location
  (CyCADA Fig. 7, mid right: 6 convolutional layers, a single value per pixel).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["instance", "batch"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False) if kind == "instance" else nn.BatchNorm2d(channels)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_down: int = 2,
                 n_blocks: int = 2, norm: Norm = "instance") -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(norm, ngf),
                                   nn.ReLU(True)]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), _norm(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       _norm(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImageDiscriminator(nn.Module):
    """``n_layers`` 3x3 convolutions; strides of 2 on every other layer; one logit per location."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 6, norm: Norm = "instance") -> None:
        super().__init__()
        if n_layers < 2:
            raise ValueError("an image discriminator needs at least 2 layers")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 3, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for i in range(1, n_layers - 1):
            stride = 2 if i % 2 == 1 else 1
            out = min(ch * 2, ndf * 8) if stride == 2 else ch
            layers += [nn.Conv2d(ch, out, 3, stride=stride, padding=1), _norm(norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
