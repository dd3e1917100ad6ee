"""I2IAdapt's networks (Murez et al., "Image to Image Translation for Domain Adaptation", CVPR 2018, Fig. 2).

- The shared encoder f (f_x = f_y) and the classifier h are the track's task model: z is its
  ``encoder_layer`` activation, h o f its logits. :class:`InputAdapter` gives it the paper's inputs:
  digits 32x32 grey (MNIST and USPS bilinearly upsampled, colour converted to grey, section 4.1), street
  scenes downsampled by 2 with the logits upsampled back (section 4.3), so ``evaluate`` scores it on the
  test images as they are.
- :class:`Decoders`: g_x and g_y share their first layers (section 4). Digits: three transposed
  convolutions from the 500-d code (a 1x1 map) to 32x32; street scenes: a stride-1 convolution, then
  stride-2 transposed convolutions up to the input size (three for a stride-8 encoder, as in 4.3).
  Batch norm and ReLU between layers and tanh last, as CycleGAN-style decoders do (the paper gives no more).
- :class:`ImageCritic`: d_x and d_y, stride-2 convolutions (digits three, street scenes four), the last
  giving one score per location, no normalisation (WGAN-GP critics take none, Gulrajani et al. 4).
  d_z is :class:`~pipeline_lib.models.discriminators.FeatureDiscriminator` (three fully connected layers).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.config import BackboneParams
from pipeline_lib.models import build_backbone
from pipeline_lib.models.base import TaskModel

#: ITU-R 601 luma weights (what PIL's convert("L") uses): colour -> grey
GREY = (0.299, 0.587, 0.114)


class InputAdapter(TaskModel):
    """A task model behind the paper's input preparation: grey, resize to ``size`` (classification) or
    downsample by ``scale`` (segmentation; the logits are upsampled back to the input size)."""

    def __init__(self, inner: TaskModel, size: int | None = None, grey: bool = False, scale: int = 1) -> None:
        super().__init__()
        self.inner = inner
        self.size, self.grey, self.scale = size, grey, scale
        self.task, self.num_classes = inner.task, inner.num_classes
        self.in_channels = inner.in_channels
        self.encoder_layer = inner.encoder_layer
        self.matchers = nn.ModuleDict()

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.inner.layer_names

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """What the inner model sees of images ``x`` (N x C x H x W in [-1, 1])."""
        if self.grey and x.shape[1] == 3:
            x = sum(w * x[:, i:i + 1] for i, w in enumerate(GREY))
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self.scale > 1:
            x = F.interpolate(x, scale_factor=1 / self.scale, mode="bilinear", align_corners=False,
                              antialias=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(self.prepare(x))
        if self.task == "segmentation" and tuple(logits.shape[-2:]) != tuple(x.shape[-2:]):
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits

    def forward_features(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.inner.forward_features(self.prepare(x), names)


def _block(layer: nn.Conv2d | nn.ConvTranspose2d, last: bool) -> nn.Sequential:
    if last:
        return nn.Sequential(layer, nn.Tanh())
    return nn.Sequential(layer, nn.BatchNorm2d(layer.out_channels), nn.ReLU(True))


def decoder_layers(z_channels: int, z_side: int, out_channels: int, image_side: int, ngf: int) -> list[nn.Module]:
    """The decoder's layers from a code of ``z_channels`` x ``z_side`` x ``z_side`` to an image.

    A 1x1 code (a vector) gets three transposed convolutions: to ``image_side / 4``, then two of stride 2.
    A feature map gets a stride-1 convolution, then one stride-2 transposed convolution per factor of 2
    between ``z_side`` and ``image_side`` (which must be a power of two times ``z_side``).
    """
    if z_side == 1:
        if image_side % 4:
            raise ValueError(f"a vector code decodes to a side divisible by 4, not {image_side}")
        chans = [ngf * 4, ngf * 2, out_channels]
        layers = [nn.ConvTranspose2d(z_channels, chans[0], image_side // 4),
                  nn.ConvTranspose2d(chans[0], chans[1], 4, 2, 1), nn.ConvTranspose2d(chans[1], chans[2], 4, 2, 1)]
    else:
        ups = math.log2(image_side / z_side)
        if ups != int(ups) or ups < 1:
            raise ValueError(f"the encoder's {z_side}-pixel map does not upsample to {image_side} by factors of 2")
        n = int(ups)
        chans = [ngf * 2 ** min(n, 3)] + [ngf * 2 ** min(n - 1 - i, 3) for i in range(n - 1)] + [out_channels]
        layers = [nn.Conv2d(z_channels, chans[0], 3, 1, 1)]
        layers += [nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1) for i in range(n)]
    return [_block(layer, i == len(layers) - 1) for i, layer in enumerate(layers)]


class Decoders(nn.Module):
    """g_x and g_y: the first ``shared`` layers are one module (both decoders use it), the rest one per
    domain. ``domains`` names the decoders built ("x", "y"): a loss that needs neither is never paid for."""

    def __init__(self, z_channels: int, z_side: int, out_channels: int, image_side: int, ngf: int, shared: int,
                 domains: Sequence[str] = ("x", "y")) -> None:
        super().__init__()
        first = decoder_layers(z_channels, z_side, out_channels, image_side, ngf)
        if not 0 <= shared < len(first):
            raise ValueError(f"decoders have {len(first)} layers; share 0 to {len(first) - 1} of them")
        self.trunk = nn.Sequential(*first[:shared])
        self.heads = nn.ModuleDict()
        for i, name in enumerate(domains):
            layers = first if i == 0 else decoder_layers(z_channels, z_side, out_channels, image_side, ngf)
            self.heads[name] = nn.Sequential(*layers[shared:])

    def forward(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.heads[domain](self.trunk(z))


class ImageCritic(nn.Module):
    """``n_layers`` stride-2 convolutions (LeakyReLU 0.2 between), the last one giving a score per location."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        ch = in_channels
        for i in range(n_layers - 1):
            out = ndf * 2 ** min(i, 3)
            layers += [nn.Conv2d(ch, out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def load_i2i_model(path: str | Path, params: BackboneParams) -> tuple[InputAdapter, dict]:
    """An I2IAdapt checkpoint as the deployed h o f behind its input preparation; returns (model, meta)."""
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    inner = build_backbone(params.model_copy(update=meta["backbone_update"]), num_classes=meta["num_classes"])
    model = InputAdapter(inner, **meta["input"])
    model.inner.load_state_dict(ckpt["state"])
    return model, meta
