"""ResNet-18/50 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) from torchvision, as
classification task models for class-per-folder domains (Office-31 and its kin, usually with ResNet-50).

The network is a :class:`~pipeline_lib.models.base.ChainModel` of torchvision's own modules: ``stem`` (input
normalisation, conv1, bn1, ReLU, max-pool), ``layer1``..``layer4``, ``pool`` (global average pool, flattened:
the encoder feature, 512-d or 2048-d) and ``logits`` (a new fully connected layer for the domain's classes).
Every method reaches it through the task-model interface: ADDA and the calibrator at ``pool``, GAM and
feature-map regression at the layers their params list for the backbone.

Inputs are in [-1, 1] like every model here; the stem converts them to the ImageNet normalisation the
pretrained weights expect (grey input is repeated to three channels). ImageNet weights are never downloaded:
they come from ``weights`` (a local torchvision state dict) or, with ``pretrained``, torch's hub cache
(``$TORCH_HOME/hub/checkpoints``), where any earlier ``torchvision.models.resnet50(weights=...)`` left them.
A missing file is a one-line error naming the path and where to get it. Without either, the weights are
random (tests, or training from scratch).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from pipeline_lib.errors import PipelineError
from pipeline_lib.models.base import ChainModel, ImageNetInput

ARCHS = ("resnet18", "resnet50")


def _weights_enum(arch: str):
    from torchvision.models import ResNet18_Weights, ResNet50_Weights
    return {"resnet18": ResNet18_Weights, "resnet50": ResNet50_Weights}[arch]


def hub_cache_files(arch: str) -> list[Path]:
    """Where torch's hub cache keeps torchvision's ImageNet weights for ``arch`` (newest first)."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return [cache / Path(w.url).name for w in reversed(list(_weights_enum(arch)))]


def weights_file(arch: str, weights: Path | None, pretrained: bool) -> Path | None:
    """The ImageNet weights file to load for ``arch``, or None for random weights; a missing file is one line."""
    if weights is not None:
        if not Path(weights).is_file():
            url = _weights_enum(arch).DEFAULT.url
            raise PipelineError(f"{arch} weights file {weights} not found; download {url} there (no download "
                                "happens at run time), or fix the backbone's weights: path in params.yaml")
        return Path(weights)
    if not pretrained:
        return None
    found = [p for p in hub_cache_files(arch) if p.is_file()]
    if not found:
        url = _weights_enum(arch).DEFAULT.url
        raise PipelineError(f"{arch} ImageNet weights are not in torch's hub cache ({hub_cache_files(arch)[0]}); "
                            f"download {url} there, or set the backbone's weights: <file> in params.yaml, or "
                            "pretrained: false (random weights)")
    return found[0]


def _load_imagenet(net: nn.Module, path: Path, arch: str) -> None:
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        raise PipelineError(f"{path}: not a readable weights file ({type(err).__name__}); download it again") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise PipelineError(f"{path}: not a state dict of {arch} weights; use torchvision's {arch} ImageNet file")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # a new head for the domain's classes
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError:
        raise PipelineError(f"{path}: its tensors do not fit {arch} (another architecture?); use torchvision's "
                            f"{arch} ImageNet file") from None
    if unexpected or [k for k in missing if not k.startswith("fc.")]:
        raise PipelineError(f"{path}: not torchvision {arch} weights ({len(unexpected)} unknown and "
                            f"{len(missing)} missing tensors); use torchvision's {arch} ImageNet file")


class ResNet(ChainModel):
    """torchvision's ResNet-18/50 as a chain: stem, layer1..layer4, pool (encoder), logits."""

    def __init__(self, arch: str, num_classes: int, in_channels: int = 3, weights: Path | None = None) -> None:
        import torchvision.models as tvm

        if arch not in ARCHS:
            raise ValueError(f"unknown resnet {arch!r} (known: {', '.join(ARCHS)})")
        net = getattr(tvm, arch)(weights=None)
        if weights is not None:
            _load_imagenet(net, weights, arch)
        feature_dim = net.fc.in_features
        stages = OrderedDict(
            stem=nn.Sequential(ImageNetInput(), net.conv1, net.bn1, net.relu, net.maxpool),
            layer1=net.layer1, layer2=net.layer2, layer3=net.layer3, layer4=net.layer4,
            pool=nn.Sequential(net.avgpool, nn.Flatten()),
            logits=nn.Linear(feature_dim, num_classes),
        )
        super().__init__(stages, task="classification", num_classes=num_classes, in_channels=in_channels,
                         encoder_layer="pool")
        self.arch, self.feature_dim = arch, feature_dim
