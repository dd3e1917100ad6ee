"""Segmentation task models: each backbone wrapped as a :class:`TappedModel` with named layers.

- ``lraspp_mobilenet_v3``: torchvision's LR-ASPP on MobileNetV3-Large (Howard et al., ICCV 2019),
  the CPU-friendly default of the ``tiny``/``demo`` profiles; layers ``block00``..``block16`` are
  the backbone's 17 feature blocks, the encoder layer is ``block16`` (the high-level features).
- ``fcn8s_vgg16``: VGG16-FCN8s (Long et al. 2015), CyCADA Table 4.
- ``drn26``: DRN-C-26 (Yu et al. 2017), CyCADA Table 4 and the calibrator paper.
- ``erfnet`` / ``erfnet_encoder``: ERFNet (Romera et al. 2018) with its decoder, or its encoder
  with bilinear upsampling as GAM section 5.3 uses it (17 layers).

Every model maps (N, 3, H, W) images in [-1, 1] to (N, C, H, W) logits at the input resolution.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from pipeline_lib.models.base import TappedModel


class _OutputOnly(nn.Module):
    """torchvision's segmentation models return {"out": logits}; keep the tensor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["out"]


def lraspp_mobilenet_v3(num_classes: int, pretrained: bool = False) -> TappedModel:
    from torchvision.models import MobileNet_V3_Large_Weights
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained else None
    net = _OutputOnly(lraspp_mobilenet_v3_large(weights=None, weights_backbone=weights, num_classes=num_classes))
    blocks = [name for name, _ in net.model.backbone.named_children()]
    taps = OrderedDict((f"block{int(b):02d}", f"model.backbone.{b}") for b in blocks)
    return TappedModel(net, taps, task="segmentation", num_classes=num_classes, encoder_layer=list(taps)[-1])


def _tapped(net: nn.Module, num_classes: int) -> TappedModel:
    taps = OrderedDict((path.replace(".", "_"), path) for path in net.TAPS)  # type: ignore[attr-defined]
    encoder = net.ENCODER_LAYER.replace(".", "_")  # type: ignore[attr-defined]
    return TappedModel(net, taps, task="segmentation", num_classes=num_classes, encoder_layer=encoder)


def fcn8s_vgg16(num_classes: int, pretrained: bool = False) -> TappedModel:
    from pipeline_lib.models.fcn8s import VGG16FCN8s
    return _tapped(VGG16FCN8s(num_classes, pretrained=pretrained), num_classes)


def drn26(num_classes: int, pretrained: bool = False) -> TappedModel:
    from pipeline_lib.models.drn import DRN26Seg
    return _tapped(DRN26Seg(num_classes, pretrained=pretrained), num_classes)


def erfnet(num_classes: int, pretrained: bool = False, decoder: bool = True) -> TappedModel:
    from pipeline_lib.models.erfnet import ERFNet
    if pretrained:
        raise ValueError("ERFNet has no ImageNet weights here; set pretrained: false")
    return _tapped(ERFNet(num_classes, decoder=decoder), num_classes)


SEGMENTERS = {
    "lraspp_mobilenet_v3": lraspp_mobilenet_v3,
    "fcn8s_vgg16": fcn8s_vgg16,
    "drn26": drn26,
    "erfnet": erfnet,
    "erfnet_encoder": lambda num_classes, pretrained=False: erfnet(num_classes, pretrained, decoder=False),
}
