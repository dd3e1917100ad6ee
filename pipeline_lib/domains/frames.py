"""Segmentation domains as streamed frame datasets, for every stage of the segmentation track.

A prepared segmentation domain is one of:

- an embedded one (``scenes_game``/``scenes_photo``): ``data/domains/<name>.npz`` with uint8
  frames (N, H, W, 3) and train-id masks (N, H, W), small enough to hold in memory;
- a real one (GTA5, Cityscapes, SYNTHIA, a user's folder): ``data/domains/<name>.json``, an
  index of which frames form the train and test splits, with paths relative to the dataset
  root in ``params.yaml`` (so the index is the same on every machine). Frames are decoded
  from disk one at a time by DataLoader workers: memory stays bounded for any frame count;
- a translated source set (CyCADA): shards of frames + masks read through memory maps.

:func:`open_frames` takes the resolved :class:`~pipeline_lib.domains.resolve.Domain` and returns a
:class:`torch.utils.data.Dataset` of ``(image, mask)`` with the image a float (3, H, W) tensor in
[-1, 1] and the mask int64 (H, W) of train ids or 255.

How the test split of a dataset without an official one is chosen (:func:`build_index`): GTA5 and
SYNTHIA hold out their last ``prepare.<name>.test_frames`` frames sorted by file name; a folder
domain holds out exactly one of: the last ``test_fraction`` of its frames sorted by file name (the
default), the frames whose stems are listed in ``test_stems``, or those whose stems match the glob
``test_glob`` (e.g. ``seq07_*`` holds out a whole sequence).

``prepare`` builds the index with :func:`prepare_index`, which also decodes every frame it lists
once, with the readers training will use (:mod:`pipeline_lib.domains.validation`), so a corrupt or
mismatched file stops ``prepare`` rather than a training run hours later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from pipeline_lib.artifacts import ShardReader, atomic_path
from pipeline_lib.config import REAL_SCENE_DOMAINS, FrameParams, Params
from pipeline_lib.domains.base import check_held_out, held_out_by_name
from pipeline_lib.domains.classes import IGNORE_INDEX
from pipeline_lib.domains.resolve import Domain, resolve_domain
from pipeline_lib.domains.store import load_domain
from pipeline_lib.errors import PipelineError

if TYPE_CHECKING:
    from torchvision import tv_tensors

    from pipeline_lib.domains.segmentation import SegmentationDataset
    from pipeline_lib.domains.validation import FrameCheck

# torchvision is imported where frames are transformed, not with this module: the digits stages import it
# through pipeline_lib.domains.loading and never touch a frame (torchvision's import costs ~2 s per process)
Transform = Callable[["tv_tensors.Image", "tv_tensors.Mask"], tuple[torch.Tensor, torch.Tensor]]


class MaxWidth:
    """Scale an (image, mask) pair wider than ``width`` down to it, keeping the aspect ratio (mask: nearest)."""

    def __init__(self, width: int) -> None:
        self.width = width

    def __call__(self, image: tv_tensors.Image, mask: tv_tensors.Mask) -> tuple[Any, Any]:
        h, w = image.shape[-2:]
        if w <= self.width:
            return image, mask
        size = [max(1, round(h * self.width / w)), self.width]
        from torchvision.transforms.v2 import functional as TF
        return TF.resize(image, size, antialias=True), TF.resize(mask, size)


def frame_transform(frames: FrameParams | None = None, *, train: bool, flip: bool = False,
                    size: tuple[int, int] | None = None) -> Transform:
    """Scale down (optional), resize to a fixed ``size`` (optional), random crop and flip (training),
    then float [-1, 1] images and int64 masks."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2
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
        from torchvision import tv_tensors
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


def _open_dataset(domain: Domain, split: str) -> SegmentationDataset:
    """The on-disk dataset behind ``domain`` (listing and pairing its files, errors naming the layout)."""
    # imported here: only a real or folder domain's stages read files (the Domain lists the module for them)
    from pipeline_lib.domains import segmentation as seg
    root = domain.root
    if root is not None and domain.kind == "folder":
        mapping = dict(zip(domain.label_ids, range(domain.num_classes)))
        return seg.FolderSegmentationDataset(root, domain.classes, mapping, domain.ignore_id, palette=domain.palette,
                                             name=domain.name)
    if root is not None and domain.name == "cityscapes":
        return seg.CityscapesDataset(root, split="val" if split == "test" else "train")
    if root is not None and domain.name == "gta5":
        return seg.GTA5Dataset(root)
    if root is not None and domain.name == "synthia":
        return seg.SynthiaDataset(root)
    raise PipelineError(f"{domain.name}: a {domain.kind} domain has no dataset folder to stream frames from; "
                        "only real street-scene datasets and data.folders domains are indexed")


def _stem(pair: tuple[Path, Path]) -> str:
    return Path(pair[0]).stem


def _test_mask(params: Params, domain: Domain, samples: list[tuple[Path, Path]]) -> list[bool]:
    """Which frames (sorted by file name) form the test split of a dataset without an official one."""
    name, n = domain.name, len(samples)
    if domain.kind == "folder":
        f, key = params.data.folders[name], f"data.folders.{name}"
        named = held_out_by_name([(_stem(s),) for s in samples], f.test_stems, f.test_glob, name, key, "frame",
                                 f"{domain.root}/images")
        if named is None:
            n_test = round(n * f.test_fraction)
            rule = f"{key}.test_fraction {f.test_fraction}"
            if not 1 <= n_test < n:
                raise PipelineError(f"{name}: {n} frame(s) cannot be split into train and test by {rule}; add "
                                    "frames or change the fraction (or hold out frames with test_stems/test_glob)")
            named = np.arange(n) >= n - n_test, rule
        check_held_out(*named, name, "frame")
        return named[0].tolist()
    held = {"gta5": params.prepare.gta5.test_frames, "synthia": params.prepare.synthia.test_frames}[name]
    n_test = min(int(held), n - 1)
    if n_test < 1:
        raise PipelineError(f"{name}: {n} frame(s) cannot be split into train and test; add frames to "
                            f"{domain.root} or lower prepare.{name}.test_frames in params.yaml")
    return [i >= n - n_test for i in range(n)]


def build_index(params: Params, name: str) -> dict[str, Any]:
    """Check a real dataset's layout and list its train/test frames (relative to its root).

    Cityscapes keeps its official train/val splits (val is the test split); any other dataset
    holds out frames as the module docstring says.
    """
    domain = resolve_domain(params, name)
    if domain.name == "cityscapes":
        train, test = _open_dataset(domain, "train"), _open_dataset(domain, "test")
        splits = {"train": list(train.samples), "test": list(test.samples)}
        root = Path(train.root)  # type: ignore[attr-defined]
    else:
        data = _open_dataset(domain, "train")
        samples = list(data.samples)
        mask = _test_mask(params, domain, samples)
        splits = {"train": [s for s, t in zip(samples, mask) if not t], "test": [s for s, t in zip(samples, mask) if t]}
        root = Path(data.root)  # type: ignore[attr-defined]
    rel = {k: [[str(Path(i).relative_to(root)), str(Path(lab).relative_to(root))] for i, lab in v]
           for k, v in splits.items()}
    return {"domain": name, "classes": list(domain.classes), "eval_classes": list(domain.eval_classes),
            "counts": {k: len(v) for k, v in rel.items()}, "splits": rel}


def write_index(path: Path, index: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n")


def _read_index(domain: Domain) -> dict[str, Any]:
    path = domain.artifact
    if not path.is_file():
        raise PipelineError(f"{path}: prepared domain not found; run its prepare stage first")
    try:
        index = json.loads(path.read_text())
        classes, splits = index["classes"], index["splits"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise PipelineError(f"{path}: not a frame index; delete it and rerun its prepare stage") from None
    if tuple(classes) != domain.classes:
        raise PipelineError(f"{path}: indexed with {len(classes)} classes but params.yaml now lists "
                            f"{domain.num_classes} for {domain.name!r} (or another order); rerun its prepare stage")
    if not isinstance(splits, dict) or not {"train", "test"} <= set(splits):
        raise PipelineError(f"{path}: not a frame index; delete it and rerun its prepare stage")
    return index


def open_frames(domain: Domain, split: str, transform: Transform | None) -> Dataset:
    """The ``split`` ("train" or "test") of a prepared segmentation domain, streamed."""
    if domain.task != "segmentation":
        raise PipelineError(f"{domain.name} is a {domain.task} domain, not a segmentation one; use a segmentation "
                            "domain with a segmentation backbone")
    if domain.in_memory:
        data = getattr(load_domain(domain.artifact), split)
        return ArrayFrames(data.images, data.labels, transform)
    dataset = indexed_frames(domain, _read_index(domain), split)
    dataset.transforms = transform
    return dataset


def indexed_frames(domain: Domain, index: dict[str, Any], split: str) -> SegmentationDataset:
    """The frames ``index`` lists for ``split`` of a real or folder ``domain``, read by its dataset's own reader
    (untransformed: uint8 images and train-id masks)."""
    dataset = _open_dataset(domain, split)
    root = Path(dataset.root)  # type: ignore[attr-defined]
    wanted = [(root / i, root / lab) for i, lab in index["splits"][split]]
    missing = sorted(set(wanted) - set(dataset.samples))
    if missing:
        raise PipelineError(f"{domain.name}: {len(missing)} indexed frame(s) are gone from {root} (e.g. "
                            f"{missing[0][0]}); restore the dataset or rerun its prepare stage")
    dataset.samples = tuple(wanted)
    return dataset


def prepare_index(params: Params, name: str) -> tuple[dict[str, Any], FrameCheck | None]:
    """:func:`build_index` with the content hash of the dataset folder under ``"content"``
    (:func:`pipeline_lib.domains.manifest.content_digest`: it changes when a frame's bytes do, so the stages that
    read the index rerun), then decode every frame it lists (:func:`~pipeline_lib.domains.validation.check_frames`)
    unless ``prepare.validate_frames.<name>`` is false; the index records the result under ``"validated"``
    (``False`` when skipped). A bad file stops here with one line naming it, before any index is written."""
    # imported here, not at the top: only the prepare stage of a streamed domain hashes the folder and runs the
    # check, so the other stages that read frames do not depend on their code (in the Domain.modules of real and
    # folder domains)
    from pipeline_lib.domains.manifest import content_digest
    from pipeline_lib.domains.validation import check_frames

    flags = params.prepare.validate_frames
    streamed = [*REAL_SCENE_DOMAINS, *(n for n, f in params.data.folders.items() if f.layout == "segmentation")]
    unknown = sorted(set(flags) - set(streamed))
    if unknown:  # a typo would silently leave a trusted dataset checked (or the wrong one unchecked)
        raise PipelineError(f"prepare.validate_frames.{unknown[0]}: no real street dataset or segmentation "
                            f"data.folders domain is called {unknown[0]!r} (these are: {', '.join(streamed)}); fix the "
                            "name or remove the key (a class-per-folder domain's images are always decoded)")
    domain = resolve_domain(params, name)
    assert domain.root is not None  # a streamed domain is read from its folder
    content = content_digest(name, domain.root)  # before the listing: the frames indexed are at least this new
    index = {**build_index(params, name), "content": content}
    if not flags.get(name, True):
        return {**index, "validated": False}, None
    check = check_frames(domain, index, params.prepare.validate_workers)
    return {**index, "validated": check.record}, check
