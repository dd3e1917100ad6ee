"""ERFNet, the segmentation network of the GAM paper.

Romera, Alvarez, Bergasa, Arroyo, "ERFNet: Efficient Residual Factorized ConvNet for Real-time Semantic
Segmentation", IEEE T-ITS 2018; follows the authors' code Eromera/erfnet_pytorch (``train/erfnet.py``).

Encoder (output stride 8), 16 blocks ``encoder.b01`` .. ``encoder.b16``:
DownsamplerBlock(3, 16), DownsamplerBlock(16, 64), 5 x non_bottleneck_1d(64, dropout 0.03, dilation 1),
DownsamplerBlock(64, 128), 2 x [non_bottleneck_1d(128, 0.3, d) for d in (2, 4, 8, 16)].

- ``decoder=True``: the standard decoder ``decoder.b01`` .. ``decoder.b06`` (UpsamplerBlock(128, 64),
  2 x non_bt(64), UpsamplerBlock(64, 16), 2 x non_bt(16)) and ``decoder.output_conv`` (ConvTranspose2d
  16 -> classes, stride 2); the encoder's 1x1 ``output_conv`` is not built.
- ``decoder=False``: the encoder's 1x1 ``encoder.output_conv`` (layer 17) and bilinear upsampling to the
  input size -- the "ERFNet without decoder" whose layers 4/17, 8/17, 12/17, 17/17 GAM matches.

The input is zero-padded at the bottom/right to a multiple of 8 (each DownsamplerBlock concatenates a
stride-2 conv with a 2x2 max-pool, which needs even sizes) and the output is cropped back to (H, W).
Block-internal parameter names match the reference (``encoder.initial_block`` -> ``encoder.b01``,
``encoder.layers.i`` -> ``encoder.b{i+2}``, ``decoder.layers.i`` -> ``decoder.b{i+1}``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class DownsamplerBlock(nn.Module):
    """Concatenate a 3x3 stride-2 conv (``noutput - ninput`` maps) with a 2x2 max-pool; BN + ReLU."""

    def __init__(self, ninput: int, noutput: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ninput, noutput - ninput, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(noutput, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1d(nn.Module):
    """The residual "non-bottleneck-1D" block: two factorised (3x1, 1x3) conv pairs, the second dilated."""

    def __init__(self, chann: int, dropprob: float, dilated: int) -> None:
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(chann, chann, (3, 1), padding=(1, 0))
        self.conv1x3_1 = nn.Conv2d(chann, chann, (1, 3), padding=(0, 1))
        self.bn1 = nn.BatchNorm2d(chann, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(chann, chann, (3, 1), padding=(dilated, 0), dilation=(dilated, 1))
        self.conv1x3_2 = nn.Conv2d(chann, chann, (1, 3), padding=(0, dilated), dilation=(1, dilated))
        self.bn2 = nn.BatchNorm2d(chann, eps=1e-3)
        self.dropout = nn.Dropout2d(dropprob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1x3_1(F.relu(self.conv3x1_1(x)))))
        out = self.bn2(self.conv1x3_2(F.relu(self.conv3x1_2(out))))
        if self.dropout.p != 0:
            out = self.dropout(out)
        return F.relu(out + x)


class UpsamplerBlock(nn.Module):
    """3x3 stride-2 transposed conv (exactly 2x upsampling) + BN + ReLU."""

    def __init__(self, ninput: int, noutput: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(ninput, noutput, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(noutput, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _named(blocks: list[nn.Module]) -> OrderedDict[str, nn.Module]:
    return OrderedDict((f"b{i:02d}", block) for i, block in enumerate(blocks, start=1))


class ERFNet(nn.Module):
    """ERFNet (Romera et al., T-ITS 2018); ``forward`` maps normalised images to (N, C, H, W) logits."""

    TAPS: tuple[str, ...]  # set per instance: 16 encoder blocks + output_conv, or + the decoder blocks
    ENCODER_LAYER: str = "encoder.b16"
    OUTPUT_STRIDE = 8

    def __init__(self, num_classes: int, decoder: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.has_decoder = decoder
        blocks: list[nn.Module] = [DownsamplerBlock(3, 16), DownsamplerBlock(16, 64)]
        blocks += [NonBottleneck1d(64, 0.03, 1) for _ in range(5)]
        blocks.append(DownsamplerBlock(64, 128))
        blocks += [NonBottleneck1d(128, 0.3, d) for _ in range(2) for d in (2, 4, 8, 16)]
        self.encoder = nn.Sequential(_named(blocks))
        self.decoder: nn.Sequential | None = None
        if decoder:
            self.decoder = nn.Sequential(_named([
                UpsamplerBlock(128, 64), NonBottleneck1d(64, 0, 1), NonBottleneck1d(64, 0, 1),
                UpsamplerBlock(64, 16), NonBottleneck1d(16, 0, 1), NonBottleneck1d(16, 0, 1),
            ]))
            self.decoder.add_module("output_conv", nn.ConvTranspose2d(16, num_classes, 2, stride=2))
        else:
            self.encoder.add_module("output_conv", nn.Conv2d(128, num_classes, 1))
        parts = [("encoder", self.encoder)] + ([("decoder", self.decoder)] if self.decoder is not None else [])
        self.TAPS = tuple(f"{part}.{name}" for part, seq in parts for name, _ in seq.named_children())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % self.OUTPUT_STRIDE, 0, (-h) % self.OUTPUT_STRIDE))
        y = self.encoder(x)
        if self.decoder is not None:
            y = self.decoder(y)
        else:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y[:, :, :h, :w].contiguous()
