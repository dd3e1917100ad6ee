"""FCN-8s on a VGG16 body, the segmentation network of CyCADA's Table 4.

Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015
(reference: shelhamer/fcn.berkeleyvision.org, ``voc-fcn8s`` / ``voc-fcn8s-atonce``), as ported to
PyTorch in CyCADA's release (jhoffman/cycada_release, ``cycada/models/fcn8s.py``):

- ``pool1`` .. ``pool5``: the VGG16 convolutional body (torchvision's ``vgg16().features``), one block per
  max-pool;
- ``fc6`` (7x7 conv 512->4096) and ``fc7`` (1x1 conv 4096->4096), each ReLU + Dropout2d(0.5), carrying
  VGG's fully connected classifier weights reshaped into convolutions;
- ``score_fr``/``score_pool4``/``score_pool3`` (1x1 class scorers; the skip scorers start at zero and see
  their inputs scaled by 0.01 and 1e-4, as in the "at-once" model CyCADA trains);
- ``upscore2``, ``upscore_pool4``, ``upscore8``: transposed convolutions holding fixed bilinear kernels
  (the reference implementation keeps them at ``lr_mult=0``; CyCADA uses a fixed buffer).

Instead of the reference's 100-pixel input padding and crop offsets, ``fc6`` uses padding 3 and the input
is zero-padded at the bottom/right to a multiple of 32; the upsamplers (kernel 2f, stride f, padding f/2)
then align every skip exactly and the output is cropped back to (N, num_classes, H, W).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# End (exclusive) of each pooling block in torchvision's ``vgg16().features``; block k ends in a MaxPool2d.
_POOL_ENDS = (5, 10, 17, 24, 31)


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """A (channels, channels, 2f, 2f) transposed-convolution weight that upsamples each channel bilinearly.

    The FCN reference's ``surgery.upsample_filt`` placed on the channel diagonal.
    """
    size = 2 * factor
    center = factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = taps[:, None] * taps[None, :]
    return weight


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """Fixed (non-trainable) bilinear upsampling by ``factor``: output size is exactly ``factor`` x input."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, factor))
    up.weight.requires_grad_(False)
    return up


class VGG16FCN8s(nn.Module):
    """FCN-8s (Long et al., CVPR 2015) on VGG16; ``forward`` maps normalised images to (N, C, H, W) logits."""

    TAPS: tuple[str, ...] = ("pool1", "pool2", "pool3", "pool4", "pool5", "fc6", "fc7")
    ENCODER_LAYER: str = "fc7"
    POOL4_SCALE = 0.01
    POOL3_SCALE = 1e-4

    def __init__(self, num_classes: int, pretrained: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1 if pretrained else None
        try:
            vgg = torchvision.models.vgg16(weights=weights)
        except OSError as exc:  # urllib's URLError is an OSError
            raise RuntimeError(f"could not download torchvision's ImageNet VGG16 weights ({exc}); "
                               "pretrained=True needs network access or a filled torch hub cache") from exc
        starts = (0,) + _POOL_ENDS[:-1]
        self.pool1, self.pool2, self.pool3, self.pool4, self.pool5 = (
            nn.Sequential(*vgg.features[s:e]) for s, e in zip(starts, _POOL_ENDS)
        )
        self.fc6 = nn.Sequential(nn.Conv2d(512, 4096, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout2d(0.5))
        self.fc7 = nn.Sequential(nn.Conv2d(4096, 4096, 1), nn.ReLU(inplace=True), nn.Dropout2d(0.5))
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        self.score_pool4 = nn.Conv2d(512, num_classes, 1)
        self.score_pool3 = nn.Conv2d(256, num_classes, 1)
        for scorer in (self.score_pool4, self.score_pool3):
            nn.init.zeros_(scorer.weight)
            nn.init.zeros_(scorer.bias)
        self.upscore2 = bilinear_upsampler(num_classes, 2)
        self.upscore_pool4 = bilinear_upsampler(num_classes, 2)
        self.upscore8 = bilinear_upsampler(num_classes, 8)
        if pretrained:
            self.load_vgg16_state_dict(vgg.state_dict())

    def load_vgg16_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a torchvision ``vgg16`` state dict: ``features`` into pool1..pool5, fc6/fc7 reshaped into convs."""
        starts = (0,) + _POOL_ENDS[:-1]
        mine: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            part, index, param = key.split(".")
            i = int(index)
            if part == "features":
                block = next(b for b, end in enumerate(_POOL_ENDS) if i < end)
                mine[f"pool{block + 1}.{i - starts[block]}.{param}"] = value
            elif part == "classifier" and i in (0, 3):
                conv = self.fc6[0] if i == 0 else self.fc7[0]
                target = conv.weight if param == "weight" else conv.bias
                mine[f"{'fc6' if i == 0 else 'fc7'}.0.{param}"] = value.reshape(target.shape)
        missing, unexpected = self.load_state_dict(mine, strict=False)
        body = [k for k in missing if k.startswith(("pool", "fc6", "fc7"))]
        if body or unexpected:
            raise KeyError(f"VGG16 state dict does not fit: missing {body}, unexpected {unexpected}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % 32, 0, (-h) % 32))
        pool3 = self.pool3(self.pool2(self.pool1(x)))
        pool4 = self.pool4(pool3)
        score = self.score_fr(self.fc7(self.fc6(self.pool5(pool4))))
        fuse_pool4 = self.upscore2(score) + self.score_pool4(self.POOL4_SCALE * pool4)
        fuse_pool3 = self.upscore_pool4(fuse_pool4) + self.score_pool3(self.POOL3_SCALE * pool3)
        return self.upscore8(fuse_pool3)[:, :, :h, :w].contiguous()
