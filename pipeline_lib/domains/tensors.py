"""Load prepared or translated image sets as model-ready tensors for one backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from pipeline_lib.artifacts import read_shards
from pipeline_lib.config import BackboneParams
from pipeline_lib.domains.store import load_domain
from pipeline_lib.domains.transforms import to_model_tensor


def domain_split(npz: str | Path, split: str, backbone: BackboneParams,
                 labels: bool = True) -> tuple[TensorDataset, int]:
    """(images, labels) of a prepared domain's split, and its number of classes.

    ``labels=False`` drops the labels: how adaptation stages read the unlabelled target domain.
    """
    domain = load_domain(npz)
    data = getattr(domain, split)
    images = to_model_tensor(data.images, backbone.channels, backbone.size)
    dataset = TensorDataset(images, torch.from_numpy(data.labels)) if labels else TensorDataset(images)
    return dataset, len(domain.classes)


def translated_split(folder: str | Path, backbone: BackboneParams) -> tuple[TensorDataset, dict[str, Any]]:
    """(images, source labels) of a translated dataset (sharded, checksums verified), and its manifest."""
    images, labels, manifest = read_shards(folder)
    data = TensorDataset(to_model_tensor(images, backbone.channels, backbone.size), torch.from_numpy(labels))
    return data, manifest
