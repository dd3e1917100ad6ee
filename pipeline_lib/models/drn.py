"""DRN-C-26 with the DRNSeg head (output stride 8).

Yu, Koltun, Funkhouser, "Dilated Residual Networks", CVPR 2017; follows the authors' code fyu/drn
(``drn.py``: ``DRN(BasicBlock, [1, 1, 2, 2, 2, 2, 1, 1], arch='C')``; ``segment.py``: ``DRNSeg``):

- ``layer0``: 7x7 conv (stride 1) + BN + ReLU (``conv1``/``bn1``/``relu`` in the reference);
- ``layer1``, ``layer2``: one residual BasicBlock each (16 and 32 channels, ``layer2`` with stride 2) --
  in arch C these are residual blocks; only arch D replaces them by plain conv layers;
- ``layer3``, ``layer4``: two BasicBlocks each, stride 2 (64, 128 channels) -> output stride 8;
- ``layer5`` (256 ch, dilation 2) and ``layer6`` (512 ch, dilation 4): two BasicBlocks each, stride 1;
- ``layer7`` (dilation 2) and ``layer8`` (dilation 1): one BasicBlock each *without* the residual
  connection (degridding);
- ``seg``: 1x1 conv to the classes, then ``up``: a fixed bilinear ConvTranspose2d (kernel 16, stride 8,
  padding 4, one group per class) as in DRNSeg; the result is cropped to the input size.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

DRN_C_26_URL = "http://dl.yf.io/drn/drn_c_26-ddedf421.pth"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (dilations ``dilation``) with an optional residual connection (fyu/drn)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: tuple[int, int] = (1, 1),
                 residual: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=dilation[0], dilation=dilation[0],
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation[1], dilation=dilation[1], bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def _make_layer(inplanes: int, planes: int, blocks: int, stride: int = 1, dilation: int = 1,
                new_level: bool = True, residual: bool = True) -> nn.Sequential:
    """fyu/drn ``DRN._make_layer`` for BasicBlock (the first block of a new level starts at dilation / 2)."""
    first = (1, 1) if dilation == 1 else (dilation // 2 if new_level else dilation, dilation)
    layers = [BasicBlock(inplanes, planes, stride, first, residual)]
    layers += [BasicBlock(planes, planes, dilation=(dilation, dilation), residual=residual) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def fill_up_weights(up: nn.ConvTranspose2d) -> None:
    """Bilinear kernel for a depthwise ConvTranspose2d (fyu/drn ``segment.fill_up_weights``)."""
    w = up.weight.data
    f = math.ceil(w.size(2) / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    taps = torch.tensor([1 - abs(i / f - c) for i in range(w.size(2))], dtype=w.dtype)
    w.copy_((taps[:, None] * taps[None, :]).expand_as(w))


class DRN26Seg(nn.Module):
    """DRN-C-26 + DRNSeg head (Yu et al., CVPR 2017); ``forward`` maps normalised images to (N, C, H, W) logits."""

    TAPS: tuple[str, ...] = tuple(f"layer{i}" for i in range(9))
    ENCODER_LAYER: str = "layer8"
    OUTPUT_STRIDE = 8
    CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)

    def __init__(self, num_classes: int, pretrained: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        c = self.CHANNELS
        self.layer0 = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(3, c[0], 7, padding=3, bias=False), bn1=nn.BatchNorm2d(c[0]), relu=nn.ReLU(inplace=True)
        ))
        self.layer1 = _make_layer(c[0], c[0], 1)
        self.layer2 = _make_layer(c[0], c[1], 1, stride=2)
        self.layer3 = _make_layer(c[1], c[2], 2, stride=2)
        self.layer4 = _make_layer(c[2], c[3], 2, stride=2)
        self.layer5 = _make_layer(c[3], c[4], 2, dilation=2, new_level=False)
        self.layer6 = _make_layer(c[4], c[5], 2, dilation=4, new_level=False)
        self.layer7 = _make_layer(c[5], c[6], 1, dilation=2, new_level=False, residual=False)
        self.layer8 = _make_layer(c[6], c[7], 1, dilation=1, new_level=False, residual=False)
        self.seg = nn.Conv2d(c[7], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.seg.bias)
        self.up = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=4, groups=num_classes,
                                     bias=False)
        fill_up_weights(self.up)
        self.up.weight.requires_grad_(False)
        if pretrained:
            try:
                state = torch.hub.load_state_dict_from_url(DRN_C_26_URL, map_location="cpu", progress=False)
            except OSError as exc:  # urllib's URLError is an OSError
                raise RuntimeError(
                    f"could not download the DRN-C-26 ImageNet weights from {DRN_C_26_URL} ({exc}); "
                    f"pretrained=True needs network access or the file in {torch.hub.get_dir()}/checkpoints"
                ) from exc
            self.load_imagenet_state_dict(state)

    @staticmethod
    def reference_key(key: str) -> str:
        """This model's parameter name -> fyu/drn's (``layer0.conv1.weight`` -> ``conv1.weight``)."""
        return key.removeprefix("layer0.")

    def load_imagenet_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a fyu/drn ``drn_c_26`` state dict into layer0..layer8 (its ``fc`` classifier is skipped)."""
        state = {k.removeprefix("module."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        mine = {k: state[self.reference_key(k)] for k in self.state_dict()
                if k.startswith("layer") and self.reference_key(k) in state}
        missing = [k for k in self.state_dict() if k.startswith("layer") and k not in mine
                   and not k.endswith("num_batches_tracked")]
        unused = set(state) - {self.reference_key(k) for k in mine}
        if missing or unused:
            raise KeyError(f"DRN-C-26 state dict does not fit: missing {missing}, unexpected {sorted(unused)}")
        self.load_state_dict(mine, strict=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        for name in self.TAPS:
            x = getattr(self, name)(x)
        return self.up(self.seg(x))[:, :, :h, :w].contiguous()
