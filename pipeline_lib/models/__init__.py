"""Task models (backbones) behind the :class:`TaskModel` interface."""

from __future__ import annotations

from pipeline_lib.config import BackboneParams
from pipeline_lib.models.base import TaskModel
from pipeline_lib.models.lenet import LeNet

__all__ = ["TaskModel", "LeNet", "build_backbone"]


def build_backbone(params: BackboneParams, num_classes: int) -> TaskModel:
    if params.arch == "lenet":
        return LeNet(num_classes=num_classes, in_channels=params.channels, image_size=params.size)
    raise ValueError(f"unknown backbone architecture {params.arch!r}")  # unreachable: validated in config
