"""A toy method: the source model with the weights and bias of its logits layer scaled by a positive factor, which
changes no prediction (the argmax of scaled logits is the argmax of the logits)."""

from __future__ import annotations

import copy

import torch

from pipeline_lib.models.base import TaskModel


@torch.no_grad()
def scale_logits(model: TaskModel, scale: float) -> TaskModel:
    """A copy of ``model`` (a chain model) whose ``logits`` stage's parameters are multiplied by ``scale``."""
    out = copy.deepcopy(model)
    for name, param in out.named_parameters():
        if name.split(".")[1] == "logits":
            param.mul_(scale)
    return out
