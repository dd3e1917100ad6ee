"""Open a stage's data for either track: one call per role, whatever the task.

Every function takes the resolved :class:`~pipeline_lib.domains.resolve.Domain` (a stage calls
``resolve_domain(params, name)`` once) and the backbone's params, never the whole ``Params``.
Classification domains are small and come as in-memory tensors at the backbone's input
size; segmentation domains are streamed frame datasets (:mod:`pipeline_lib.domains.frames`)
with the stage's resize/crop settings. Every dataset yields ``(image, label)`` with images
in [-1, 1]; adaptation stages simply never read the target's labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from pipeline_lib.artifacts import read_json
from pipeline_lib.config import BackboneParams, FrameParams
from pipeline_lib.domains.frames import ShardFrames, frame_transform, open_frames
from pipeline_lib.domains.resolve import Domain
from pipeline_lib.domains.tensors import domain_split, translated_split
from pipeline_lib.errors import PipelineError


def num_classes(domain: Domain) -> int:
    """How many classes a model of ``domain`` predicts."""
    return domain.num_classes


def _frames(cfg: object) -> tuple[FrameParams | None, bool]:
    """A stage's frame settings (segmentation sections have them) and whether it flips."""
    return (cfg if isinstance(cfg, FrameParams) else None), (isinstance(cfg, FrameParams) and cfg.flip)


def _classification(domain: Domain, backbone: BackboneParams) -> bool:
    """Whether ``domain`` is read as digits; a task mismatch is a one-line error."""
    if domain.task != backbone.task:
        raise PipelineError(f"{domain.name} is a {domain.task} domain but the backbone {backbone.arch} is a "
                            f"{backbone.task} net; pick a {domain.task} backbone in params.yaml")
    return domain.task == "classification"


def train_set(domain: Domain, backbone: BackboneParams, cfg: object = None, *, labels: bool = True) -> Dataset:
    """The training split of ``domain``; segmentation frames get the stage section ``cfg``'s
    resize, random crop and flips. ``labels=False`` drops digit labels (the unlabelled target)."""
    if _classification(domain, backbone):
        return domain_split(domain.artifact, "train", backbone, labels=labels)[0]
    frames, flip = _frames(cfg)
    return open_frames(domain, "train", frame_transform(frames, train=True, flip=flip))


def test_set(domain: Domain, backbone: BackboneParams) -> Dataset:
    """The test split at full resolution (segmentation scores at the labels' resolution)."""
    if _classification(domain, backbone):
        return domain_split(domain.artifact, "test", backbone)[0]
    return open_frames(domain, "test", frame_transform(None, train=False))


def frames_for_translation(domain: Domain, backbone: BackboneParams, max_width: int | None) -> Dataset:
    """Every training frame of the source, unaugmented (what CyCADA translates), all at the size of
    the first (GTA5 has a few frames of other sizes; a translated set holds frames of one size)."""
    if _classification(domain, backbone):
        return domain_split(domain.artifact, "train", backbone)[0]
    frames = FrameParams(max_width=max_width)
    first, _ = open_frames(domain, "train", frame_transform(frames, train=False))[0]
    size = (int(first.shape[-2]), int(first.shape[-1]))
    return open_frames(domain, "train", frame_transform(frames, train=False, size=size))


def translated_set(folder: Path, backbone: BackboneParams, cfg: object = None) -> tuple[Dataset, dict[str, Any]]:
    """A CyCADA translated source set (``paths.translated_dataset``: images with the source labels)
    and its manifest."""
    if backbone.task == "classification":
        return translated_split(folder, backbone)
    frames, flip = _frames(cfg)
    data = ShardFrames(folder, frame_transform(frames, train=True, flip=flip))
    return data, read_json(Path(folder) / "manifest.json")


def sample_images(domain: Domain, backbone: BackboneParams, n: int, max_width: int | None = None) -> torch.Tensor:
    """Up to ``n`` images of ``domain`` as one tensor: test images (digits) or training frames at one
    size (segmentation). For plots and for tracing an exported model."""
    if _classification(domain, backbone):
        data = test_set(domain, backbone)
    else:
        data = frames_for_translation(domain, backbone, max_width)
    return torch.stack([data[i][0] for i in range(min(n, len(data)))])
