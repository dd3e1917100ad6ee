"""The task-model interface every method is written against.

A task model maps images to logits (N x C for classification, N x C x H x W for
segmentation) and is a chain of named stages run in forward order. Methods tap
intermediate activations by name:

- ``forward_features(x, names)`` returns the requested activations (``"logits"`` included);
- ``encoder_layer`` is where feature-level methods (ADDA, the calibrator) split the model into
  encoder M and classifier C;
- ``layer_names`` lists all named layers in forward order (GAM matches layers i = 1..L).

:class:`ChainModel` (LeNet) is a plain chain of stages and can also resume from a layer
(``forward_from``); :class:`TappedModel` wraps networks with skip connections (FCN8s,
LR-ASPP, DRN, ERFNet) and captures named layers with forward hooks.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Literal, Sequence

import torch
from torch import nn

Task = Literal["classification", "segmentation"]


class ChannelAffine(nn.Module):
    """out[:, k] = scale[k] * x[:, k] + shift[k]: GAM's per-channel matching of one layer (eq. 2)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels))
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


#: Modules that commute with a positive per-channel affine, so it may be folded into the op before them.
_COMMUTING = (nn.MaxPool2d, nn.Dropout, nn.Dropout2d, nn.Identity)


class TaskModel(nn.Module):
    """The interface: named layers in forward order (the last is ``logits``), activations by name.

    ``match_layer(name, scale, shift)`` makes layer ``name``'s output ``scale * out + shift`` per
    channel (GAM section 4.1): folded into the layer's weights where that is exact, otherwise kept
    as an explicit :class:`ChannelAffine` in ``matchers`` (listed by ``matched_layers`` so a
    checkpoint can be rebuilt with :meth:`add_matchers`).
    """

    task: Task
    num_classes: int
    in_channels: int
    encoder_layer: str
    matchers: nn.ModuleDict

    def matched_layers(self) -> dict[str, int]:
        """Layers with an explicit matcher, and their channel counts."""
        return {name: int(m.scale.numel()) for name, m in self.matchers.items()}

    def add_matchers(self, layers: dict[str, int]) -> None:
        for name, channels in layers.items():
            self.matchers[name] = ChannelAffine(channels)

    def match_layer(self, name: str, scale: torch.Tensor, shift: torch.Tensor) -> bool:
        """Apply the per-channel affine to ``name``'s output; True if it was folded into weights."""
        if name not in self.layer_names:
            raise KeyError(f"unknown layer {name!r}; this model has {list(self.layer_names)}")
        if name not in self.matchers and (scale > 0).all() and self._fold(name, scale, shift):
            return True
        if name not in self.matchers:
            self.matchers[name] = ChannelAffine(len(scale)).to(scale.device)
        m = self.matchers[name]
        with torch.no_grad():  # compose with what is there
            m.shift.copy_(scale * m.shift + shift)
            m.scale.mul_(scale)
        return False

    def _fold(self, name: str, scale: torch.Tensor, shift: torch.Tensor) -> bool:
        return False

    @property
    def layer_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _check_names(self, names: Sequence[str]) -> set[str]:
        wanted = set(names)
        unknown = wanted - set(self.layer_names)
        if unknown:
            raise KeyError(f"unknown layer(s) {sorted(unknown)}; this model has {list(self.layer_names)}")
        return wanted

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder M: the activation at ``encoder_layer``."""
        return self.forward_features(x, [self.encoder_layer])[self.encoder_layer]

    def probe(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """:meth:`forward_features` without gradients and with every batch-norm layer in eval mode (their modes
        restored after): the layers' shapes for building discriminators or decoders. A batch of one fails in a
        batch-norm layer in train mode once the map is 1x1 (ResNet's ``layer4``), and a train-mode pass would move
        the running statistics. The other layers keep their mode: a dropout layer draws as it did before."""
        norms = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        try:
            for m in norms:
                m.eval()
            with torch.no_grad():
                return self.forward_features(x, names)
        finally:
            for m in norms:
                m.train()


class ChainModel(TaskModel):
    """A chain of named stages; the last one is always called ``logits``."""

    def __init__(self, stages: "OrderedDict[str, nn.Module]", *, task: Task, num_classes: int,
                 in_channels: int, encoder_layer: str) -> None:
        super().__init__()
        names = list(stages)
        if not names or names[-1] != "logits":
            raise ValueError(f"a task model's last stage must be named 'logits', got {names}")
        if encoder_layer not in names[:-1]:
            raise ValueError(f"encoder_layer {encoder_layer!r} is not one of the stages {names[:-1]}")
        self.stages = nn.ModuleDict(stages)
        self.matchers = nn.ModuleDict()
        self.task = task
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.encoder_layer = encoder_layer

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = self.stages[name](x)
        return self.matchers[name](x) if name in self.matchers else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stages:
            x = self._stage(name, x)
        return x

    def _fold(self, name: str, scale: torch.Tensor, shift: torch.Tensor) -> bool:
        """Fold into the stage's last conv/linear/batch-norm when only pooling or dropout follow it."""
        modules = list(self.stages[name].children()) if isinstance(self.stages[name], nn.Sequential) \
            else [self.stages[name]]
        for i in range(len(modules) - 1, -1, -1):
            op = modules[i]
            if isinstance(op, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d)):
                if getattr(op, "bias", None) is None or op.weight is None:
                    return False
                with torch.no_grad():
                    op.weight.mul_(scale.view((-1,) + (1,) * (op.weight.dim() - 1)))
                    op.bias.copy_(scale * op.bias + shift)
                return True
            if not isinstance(op, _COMMUTING):
                return False
        return False

    def forward_features(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the model up to the last requested stage and return the requested activations."""
        wanted = self._check_names(names)
        out: dict[str, torch.Tensor] = {}
        for name in self.stages:
            x = self._stage(name, x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def forward_from(self, h: torch.Tensor, layer: str) -> torch.Tensor:
        """Run the stages that follow ``layer`` on its activation ``h``; returns logits."""
        names = self.layer_names
        if layer not in names:
            raise KeyError(f"unknown layer {layer!r}; this model has {list(names)}")
        for name in names[names.index(layer) + 1:]:
            h = self._stage(name, h)
        return h


#: ImageNet statistics torchvision's pretrained backbones expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetInput(nn.Module):
    """[-1, 1] images (1 or 3 channels) -> 3 channels in the ImageNet normalisation torchvision's weights expect."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((x + 1) / 2 - self.mean) / self.std


class TappedModel(TaskModel):
    """A network with skip connections whose named layers are submodules, captured by forward hooks.

    ``taps`` maps layer names (in forward order) to submodule paths of ``net``; ``logits`` is the
    network's output. Inputs are in [-1, 1] like every model here; they are converted to the
    ImageNet normalisation that pretrained torchvision weights expect before ``net`` sees them.
    """

    def __init__(self, net: nn.Module, taps: "OrderedDict[str, str]", *, task: Task, num_classes: int,
                 encoder_layer: str, in_channels: int = 3) -> None:
        super().__init__()
        if "logits" in taps:
            raise ValueError("'logits' is the network output; do not list it as a tap")
        if encoder_layer not in (*taps, "logits"):
            raise ValueError(f"encoder_layer {encoder_layer!r} is not one of {[*taps, 'logits']}")
        for path in taps.values():
            net.get_submodule(path)  # fails early on a wrong path
        self.net = net
        self.taps = dict(taps)
        self.matchers = nn.ModuleDict()
        for name, path in self.taps.items():  # a matched layer's output passes through its matcher
            net.get_submodule(path).register_forward_hook(functools.partial(self._matched, name))
        self.task = task
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.encoder_layer = encoder_layer
        self.imagenet = ImageNetInput()

    def _matched(self, name: str, _module: nn.Module, _inputs: object, out: torch.Tensor) -> torch.Tensor:
        return self.matchers[name](out) if name in self.matchers else out

    @property
    def layer_names(self) -> tuple[str, ...]:
        return (*self.taps, "logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.imagenet(x))
        return self.matchers["logits"](out) if "logits" in self.matchers else out

    def forward_features(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted = self._check_names(names)
        captured: dict[str, torch.Tensor] = {}
        handles = []
        for name in wanted - {"logits"}:
            def hook(_m: nn.Module, _inp: object, out: torch.Tensor, name: str = name) -> None:
                captured[name] = out
            handles.append(self.net.get_submodule(self.taps[name]).register_forward_hook(hook))
        try:
            logits = self(x)
        finally:
            for h in handles:
                h.remove()
        if "logits" in wanted:
            captured["logits"] = logits
        return {n: captured[n] for n in self.layer_names if n in wanted}
