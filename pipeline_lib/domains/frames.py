"""Segmentation domains as streamed frame datasets, for every stage of the segmentation track.

A prepared segmentation domain is one of:

- an embedded one (``scenes_game``/``scenes_photo``): ``data/domains/<name>.npz`` with uint8
  frames (N, H, W, 3) and train-id masks (N, H, W), small enough to hold in memory;
- a real one (GTA5, Cityscapes, SYNTHIA, a user's folder): ``data/domains/<name>.json``, an
  index of which frames form the train and test splits, with paths relative to the dataset
  root in ``params.yaml`` (so the index is the same on every machine). Frames are decoded
  from disk one at a time by DataLoader workers: memory stays bounded for any frame count;
- a translated source set (CyCADA): shards of frames + masks read through memory maps.

:func:`open_frames` returns a :class:`torch.utils.data.Dataset` of ``(image, mask)`` with the
image a float (3, H, W) tensor in [-1, 1] and the mask int64 (H, W) of train ids or 255.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from pipeline_lib import paths
from pipeline_lib.artifacts import ShardReader, atomic_path, load_domain
from pipeline_lib.config import EMBEDDED_SCENE_DOMAINS, FrameParams, Params
from pipeline_lib.domains import segmentation as seg
from pipeline_lib.errors import PipelineError
from pipeline_lib.metrics import IGNORE_INDEX

Transform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[torch.Tensor, torch.Tensor]]


class MaxWidth:
    """Scale an (image, mask) pair wider than ``width`` down to it, keeping the aspect ratio (mask: nearest)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[Any, Any]:
        h, w = image.shape[-2:]
        if w <= self.width:
            return image, mask
        size = [max(1, round(h * self.width / w)), self.width]
        return TF.resize(image, size, antialias=True), TF.resize(mask, size)


def frame_transform(frames: FrameParams | None = None, *, train: bool, flip: bool = False,
                    size: tuple[int, int] | None = None) -> Transform:
    """Scale down (optional), resize to a fixed ``size`` (optional), random crop and flip (training),
    then float [-1, 1] images and int64 masks."""
    steps: list[Callable] = []
    if frames is not None and frames.max_width is not None:
        steps.append(MaxWidth(frames.max_width))
    if size is not None:
        steps.append(v2.Resize(list(size), antialias=True))
    if train and frames is not None and frames.crop is not None:
        steps.append(v2.RandomCrop(list(frames.crop), pad_if_needed=True,
                                   fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}))
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64}, scale=True),
              v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3)]
    compose = v2.Compose(steps)

    def apply(image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = compose(image, mask)
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)

    return apply


class ArrayFrames(Dataset):
    """Frames held in uint8 arrays (N, H, W, 3) with masks (N, H, W); works on memory maps too."""

    def __init__(self, images: np.ndarray, masks: np.ndarray, transform: Transform | None = None) -> None:
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} frames but {len(masks)} masks")
        self.images, self.masks, self.transform = images, masks, transform

    def __len__(self) -> int:
        return len(self.images)

    def _raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.masks[index]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        frame, labels = self._raw(index)
        image = tv_tensors.Image(torch.from_numpy(np.array(frame)).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(np.array(labels, dtype=np.int64)))
        return self.transform(image, mask) if self.transform is not None else (image, mask)


class ShardFrames(ArrayFrames):
    """A sharded frame set (a CyCADA translated dataset), read lazily through memory maps."""

    def __init__(self, folder: str | Path, transform: Transform | None = None) -> None:
        self.reader = ShardReader(folder)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.reader)

    def _raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.reader[index]


# --------------------------------------------------------------------------------------
# Real datasets: the prepare stage writes an index; later stages open frames through it
# --------------------------------------------------------------------------------------


def _open_dataset(params: Params, domain: str, split: str) -> seg.SegmentationDataset:
    """The on-disk dataset behind ``domain`` (listing and pairing its files, errors naming the layout)."""
    if domain in params.data.folders:
        f = params.data.folders[domain]
        ids = f.ids if f.ids is not None else tuple(range(len(f.classes)))
        return seg.FolderSegmentationDataset(f.root, f.classes, dict(zip(ids, range(len(ids)))), f.ignore_id,
                                             name=domain)
    root = params.data.roots.get(domain, Path("data/raw") / domain)
    if domain == "cityscapes":
        return seg.CityscapesDataset(root, split="val" if split == "test" else "train")
    if domain == "gta5":
        return seg.GTA5Dataset(root)
    if domain == "synthia":
        return seg.SynthiaDataset(root)
    raise PipelineError(f"unknown segmentation domain {domain!r}")


def _held_out(params: Params, domain: str) -> int | float:
    if domain in params.data.folders:
        return params.data.folders[domain].test_fraction
    return {"gta5": params.prepare.gta5.test_frames, "synthia": params.prepare.synthia.test_frames}[domain]


def build_index(params: Params, domain: str) -> dict[str, Any]:
    """Check a real dataset's layout and list its train/test frames (relative to its root)."""
    splits: dict[str, list[tuple[Path, Path]]] = {}
    if domain == "cityscapes":
        train, test = _open_dataset(params, domain, "train"), _open_dataset(params, domain, "test")
        splits = {"train": list(train.samples), "test": list(test.samples)}
    else:
        data = _open_dataset(params, domain, "train")
        held = _held_out(params, domain)
        n_test = round(len(data) * held) if isinstance(held, float) else min(int(held), len(data) - 1)
        if n_test < 1 or n_test >= len(data):
            raise PipelineError(f"{domain}: {len(data)} frames cannot be split into train and test; "
                                "add frames or lower the held-out count in params.yaml")
        splits = {"train": list(data.samples[:-n_test]), "test": list(data.samples[-n_test:])}
    root = Path(data.root if domain != "cityscapes" else train.root)
    rel = {k: [[str(Path(i).relative_to(root)), str(Path(lab).relative_to(root))] for i, lab in v]
           for k, v in splits.items()}
    ref = train if domain == "cityscapes" else data
    return {"domain": domain, "classes": list(ref.classes), "eval_classes": list(ref.eval_classes),
            "counts": {k: len(v) for k, v in rel.items()}, "splits": rel}


def write_index(path: Path, index: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n")


def _read_index(params: Params, domain: str) -> dict[str, Any]:
    path = paths.domain_artifact(params, domain)
    if not path.is_file():
        raise PipelineError(f"{path}: prepared domain not found; run its prepare stage first")
    return json.loads(path.read_text())


def open_frames(params: Params, domain: str, split: str, transform: Transform | None) -> Dataset:
    """The ``split`` ("train" or "test") of a prepared segmentation domain, streamed."""
    if domain in EMBEDDED_SCENE_DOMAINS:
        data = getattr(load_domain(paths.domain_artifact(params, domain)), split)
        return ArrayFrames(data.images, data.labels, transform)
    index = _read_index(params, domain)
    dataset = _open_dataset(params, domain, split)
    root = Path(dataset.root)
    wanted = [(root / i, root / lab) for i, lab in index["splits"][split]]
    missing = sorted(set(wanted) - set(dataset.samples))
    if missing:
        raise PipelineError(f"{domain}: {len(missing)} indexed frame(s) are gone from {root} (e.g. {missing[0][0]}); "
                            "restore the dataset or rerun its prepare stage")
    dataset.samples = tuple(wanted)
    dataset.transforms = transform
    return dataset


def domain_classes(params: Params, domain: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """(class names, evaluated train ids) of a prepared segmentation domain."""
    if domain in EMBEDDED_SCENE_DOMAINS:
        return seg.CITYSCAPES_CLASSES, tuple(range(len(seg.CITYSCAPES_CLASSES)))
    index = _read_index(params, domain)
    return tuple(index["classes"]), tuple(index["eval_classes"])
