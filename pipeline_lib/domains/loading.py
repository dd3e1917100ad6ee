"""Open a stage's data for either track: one call per role, whatever the task.

Classification domains are small and come as in-memory tensors at the backbone's input
size; segmentation domains are streamed frame datasets (:mod:`pipeline_lib.domains.frames`)
with the stage's resize/crop settings. Every dataset yields ``(image, label)`` with images
in [-1, 1]; adaptation stages simply never read the target's labels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from pipeline_lib import paths
from pipeline_lib.artifacts import read_json
from pipeline_lib.config import FrameParams, Params
from pipeline_lib.domains.frames import ShardFrames, domain_classes, frame_transform, open_frames
from pipeline_lib.domains.tensors import domain_split, translated_split


def num_classes(params: Params, domain: str) -> int:
    if params.domain_task(domain) == "classification":
        from pipeline_lib.artifacts import load_domain
        return len(load_domain(paths.domain_npz(domain)).classes)
    return len(domain_classes(params, domain)[0])


def _frames(cfg: object) -> tuple[FrameParams | None, bool]:
    """A stage's frame settings (segmentation sections have them) and whether it flips."""
    return (cfg if isinstance(cfg, FrameParams) else None), bool(getattr(cfg, "flip", False))


def train_set(params: Params, domain: str, backbone: str, cfg: object = None, *, labels: bool = True) -> Dataset:
    """The training split of ``domain``; segmentation frames get the stage section ``cfg``'s
    resize, random crop and flips."""
    bb = params.backbones[backbone]
    if bb.task == "classification":
        return domain_split(paths.domain_npz(domain), "train", bb, labels=labels)[0]
    frames, flip = _frames(cfg)
    return open_frames(params, domain, "train", frame_transform(frames, train=True, flip=flip))


def test_set(params: Params, domain: str, backbone: str) -> Dataset:
    """The test split at full resolution (segmentation scores at the labels' resolution)."""
    bb = params.backbones[backbone]
    if bb.task == "classification":
        return domain_split(paths.domain_npz(domain), "test", bb)[0]
    return open_frames(params, domain, "test", frame_transform(None, train=False))


def frames_for_translation(params: Params, domain: str, backbone: str, max_width: int | None) -> Dataset:
    """Every training frame of the source, unaugmented (what CyCADA translates), all at the size of
    the first (GTA5 has a few frames of other sizes; a translated set holds frames of one size)."""
    bb = params.backbones[backbone]
    if bb.task == "classification":
        return domain_split(paths.domain_npz(domain), "train", bb)[0]
    frames = FrameParams(max_width=max_width)
    first, _ = open_frames(params, domain, "train", frame_transform(frames, train=False))[0]
    size = (int(first.shape[-2]), int(first.shape[-1]))
    return open_frames(params, domain, "train", frame_transform(frames, train=False, size=size))


def translated_set(params: Params, experiment: str, seed: int, backbone: str,
                   cfg: object = None) -> tuple[Dataset, dict[str, Any]]:
    """A CyCADA translated source set (images with the source labels) and its manifest."""
    folder = paths.translated_dataset(experiment, seed)
    bb = params.backbones[backbone]
    if bb.task == "classification":
        return translated_split(folder, bb)
    frames, flip = _frames(cfg)
    data = ShardFrames(folder, frame_transform(frames, train=True, flip=flip))
    return data, read_json(folder / "manifest.json")


def sample_images(params: Params, domain: str, backbone: str, n: int, max_width: int | None = None) -> torch.Tensor:
    """Up to ``n`` images of ``domain`` as one tensor: test images (digits) or training frames at one
    size (segmentation). For plots and for tracing an exported model."""
    if params.backbones[backbone].task == "classification":
        data = test_set(params, domain, backbone)
    else:
        data = frames_for_translation(params, domain, backbone, max_width)
    return torch.stack([data[i][0] for i in range(min(n, len(data)))])
