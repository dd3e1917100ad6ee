"""The task-model interface every method is written against.

A task model maps images to logits (N x C for classification, N x C x H x W for
segmentation) and is a chain of named stages run in forward order. Methods tap
intermediate activations by name:

- ``forward_features(x, names)`` returns the requested activations (``"logits"`` included);
- ``encoder_layer`` is where feature-level methods (ADDA, the calibrator) split the model into
  encoder M and classifier C; ``forward_from(h, layer)`` runs the stages after ``layer``;
- ``layer_names`` lists all stages in forward order (GAM matches layers i = 1..L).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, Sequence

import torch
from torch import nn

Task = Literal["classification", "segmentation"]


class TaskModel(nn.Module):
    """A chain of named stages; the last one is always called ``logits``."""

    task: Task
    encoder_layer: str

    def __init__(self, stages: "OrderedDict[str, nn.Module]", *, task: Task, num_classes: int,
                 in_channels: int, image_size: int, encoder_layer: str) -> None:
        super().__init__()
        names = list(stages)
        if not names or names[-1] != "logits":
            raise ValueError(f"a task model's last stage must be named 'logits', got {names}")
        if encoder_layer not in names[:-1]:
            raise ValueError(f"encoder_layer {encoder_layer!r} is not one of the stages {names[:-1]}")
        self.stages = nn.ModuleDict(stages)
        self.task = task
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.image_size = image_size
        self.encoder_layer = encoder_layer

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.stages.keys())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return x

    def forward_features(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Run the model and return the activations of the named stages (in forward order)."""
        wanted = set(names)
        unknown = wanted - set(self.stages)
        if unknown:
            raise KeyError(f"unknown layer(s) {sorted(unknown)}; this model has {list(self.stages)}")
        out: dict[str, torch.Tensor] = {}
        for name, stage in self.stages.items():
            x = stage(x)
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
            h = self.stages[name](h)
        return h

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder M: the activation at ``encoder_layer``."""
        return self.forward_features(x, [self.encoder_layer])[self.encoder_layer]
