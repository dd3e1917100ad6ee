"""Street-scene segmentation datasets read from their official on-disk layouts.

Every dataset here is a :class:`torch.utils.data.Dataset` that streams from disk: the
constructor only lists and pairs file names (checking the layout once), and
``__getitem__`` decodes one image and one label file. An item is ``(image, mask)``:

- ``image``: :class:`torchvision.tv_tensors.Image`, uint8, shape (3, H, W);
- ``mask``: :class:`torchvision.tv_tensors.Mask`, int64, shape (H, W), holding train ids
  ``0..num_classes-1`` and ``255`` (:data:`IGNORE_INDEX`) for pixels that are not scored.

Because both are tv_tensors, a torchvision transforms v2 callable passed as ``transforms``
is applied to the pair jointly (geometric ops move the mask with the image; resizing a
mask uses nearest neighbour, so it keeps label values). For padding/rotation, give the
mask the ignore fill, e.g. ``v2.RandomCrop(512, pad_if_needed=True,
fill={tv_tensors.Image: 0, tv_tensors.Mask: 255})``.

Datasets and where to get them (the params key names the root folder in ``params.yaml``):

- :class:`CityscapesDataset` (``data.roots.cityscapes``): ``leftImg8bit/{split}/<city>/*_leftImg8bit.png``
  and ``gtFine/{split}/<city>/*_gtFine_labelIds.png``; label ids map to the 19 train ids
  through the table of the official ``cityscapesscripts`` package.
- :class:`GTA5Dataset` (``data.roots.gta5``): ``images/*.png`` and ``labels/*.png``, the labels
  being palette PNGs whose *index* values are Cityscapes label ids. A few frames have an
  image size that differs from the label's; the image is resized (bilinear) to the label.
- :class:`SynthiaDataset` (``data.roots.synthia``): SYNTHIA-RAND-CITYSCAPES, ``RGB/*.png``
  and ``GT/LABELS/*.png``; labels are 16-bit multi-channel PNGs with the class id in the
  first channel. PIL (and imageio's default Pillow plugin) read them as 8-bit RGB and lose
  the ids, so they are decoded with ``torchvision.io.decode_png`` (libpng, 16-bit aware).
- :class:`FolderSegmentationDataset`: a user's own ``images/`` + ``labels/`` folders paired by
  file stem, with an explicit ``{label_id: train_id}`` mapping.

Only ``cityscapesscripts.helpers.labels`` is imported from ``cityscapesscripts`` (a plain
namedtuple table, no GUI or plotting imports).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from cityscapesscripts.helpers.labels import labels as _CITYSCAPES_LABELS
from PIL import Image
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from torchvision import tv_tensors

from pipeline_lib.domains.classes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    IGNORE_INDEX,
    NUM_CITYSCAPES_CLASSES,
    SYNTHIA_EVAL_CLASSES,
    SYNTHIA_TO_TRAIN_ID,
    Color,
    default_palette,
    palette_for,
)
from pipeline_lib.domains.decode import DECODE_ERRORS, to_rgb
from pipeline_lib.errors import PipelineError

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_LABEL_TO_TRAIN_ID",
    "CITYSCAPES_PALETTE",
    "IGNORE_INDEX",
    "NUM_CITYSCAPES_CLASSES",
    "SYNTHIA_EVAL_CLASSES",
    "SYNTHIA_TO_TRAIN_ID",
    "CityscapesDataset",
    "FolderSegmentationDataset",
    "GTA5Dataset",
    "SegmentationDataset",
    "SynthiaDataset",
    "default_palette",
    "palette_for",
]

Transforms = Callable[["tv_tensors.Image", "tv_tensors.Mask"], object]  # torchvision is imported where used

# --------------------------------------------------------------------------------------
# Label tables
# --------------------------------------------------------------------------------------


def _cityscapes_lut() -> np.ndarray:
    """Label id -> train id lookup table from cityscapesscripts.

    The table lists 34 label ids (0..33) plus "license plate" with id -1 and trainId -1;
    ids outside 0..255 cannot occur in a labelIds PNG and are skipped, and every train id
    of -1 or 255 (and every id the table does not list) maps to the ignore index. Names and
    colours live in :mod:`pipeline_lib.domains.classes` (light to import).
    """
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in _CITYSCAPES_LABELS:
        if not 0 <= label.id <= 255 or label.trainId in (-1, IGNORE_INDEX):
            continue
        lut[label.id] = label.trainId
    lut.setflags(write=False)
    return lut


#: uint8 (256,) table: Cityscapes label id -> train id (0..18) or 255.
CITYSCAPES_LABEL_TO_TRAIN_ID = _cityscapes_lut()


def _lut_from_mapping(mapping: Mapping[int, int], size: int) -> np.ndarray:
    lut = np.full(size, IGNORE_INDEX, dtype=np.uint8)
    for label_id, train_id in mapping.items():
        lut[label_id] = train_id
    lut.setflags(write=False)
    return lut


_SYNTHIA_LUT = _lut_from_mapping(SYNTHIA_TO_TRAIN_ID, 1 << 16)


# --------------------------------------------------------------------------------------
# File reading: every failure becomes a one-line PipelineError naming the file
# --------------------------------------------------------------------------------------


def _unreadable(path: Path, exc: BaseException | None = None) -> PipelineError:
    if not path.exists():
        return PipelineError(f"{path} no longer exists; restore it or rebuild the data set folder")
    detail = f" ({type(exc).__name__}: {' '.join(str(exc).split())})" if exc is not None else ""
    return PipelineError(f"{path} is not a readable image{detail}; re-download or delete it")


def _read_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            im.load()  # decodes the whole file
            return to_rgb(im)  # upright, 8-bit RGB, whatever the file's mode
    except DECODE_ERRORS as exc:
        raise _unreadable(path, exc) from exc


_ID_MODES = ("L", "P", "I;16", "I;16L", "I;16B", "I")


def _read_label_ids(path: Path) -> np.ndarray:
    """(H, W) integer label ids of a single-channel or palette PNG (palette *indices*, not colours)."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            ids = np.array(im) if mode in _ID_MODES else None
    except DECODE_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    if ids is None:
        raise PipelineError(
            f"label file {path} is a {mode} colour image, not label ids; use the single-channel (grey) or palette "
            "PNGs of label ids of the data set, not colour-rendered labels (convert colours to ids first)"
        )
    return ids


def _read_png_channel0(path: Path) -> np.ndarray:
    """First channel of a PNG at full bit depth (8 or 16 bit), as an (H, W) array.

    torchvision 0.29 (pinned) marks its image codecs deprecated in favour of TorchCodec; the
    warning is silenced here only. Switch to TorchCodec's PNG decoder when torchvision drops it.
    """
    from torchvision.io import ImageReadMode, decode_png
    try:
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                    category=DeprecationWarning)
            decoded = decode_png(data, mode=ImageReadMode.UNCHANGED)
    except DECODE_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    return decoded[0].numpy()


def _map_ids(ids: np.ndarray, lut: np.ndarray, path: Path) -> np.ndarray:
    if ids.size and int(ids.max()) >= len(lut):
        bad = np.unique(ids[ids >= len(lut)])
        raise PipelineError(
            f"label file {path} holds ids {_fmt_ids(bad)} beyond the largest known id {len(lut) - 1}; "
            "it is not a label-id PNG of this data set: replace it with the original label file"
        )
    return lut[ids]


def _fmt_ids(ids: Iterable[int], limit: int = 10) -> str:
    ids = [int(i) for i in ids]
    shown = ", ".join(str(i) for i in ids[:limit])
    return f"[{shown}{', ...' if len(ids) > limit else ''}]"


# --------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------


class SegmentationDataset(Dataset):
    """(image, mask) pairs streamed from disk; see the module docstring for the item format.

    Subclasses fill ``samples`` (image path, label path) and implement :meth:`_label_to_train_ids`.
    """

    name = "segmentation"
    ignore_index: int = IGNORE_INDEX
    #: Whether an image whose size differs from its label's is resized (bilinear) to the label.
    resize_image_to_label = False

    def __init__(self, samples: Sequence[tuple[Path, Path]], classes: Sequence[str],
                 palette: Sequence[Color], transforms: Transforms | None = None,
                 eval_classes: Sequence[int] | None = None) -> None:
        self.samples: tuple[tuple[Path, Path], ...] = tuple(samples)
        self.classes: tuple[str, ...] = tuple(classes)
        self.palette: tuple[Color, ...] = tuple(tuple(int(v) for v in c) for c in palette)  # type: ignore[misc]
        self.transforms = transforms
        #: Train ids that are scored (all classes unless the benchmark scores a subset).
        self.eval_classes: tuple[int, ...] = tuple(range(len(self.classes))) if eval_classes is None \
            else tuple(eval_classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _label_to_train_ids(self, label_path: Path) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, index: int):
        image_path, label_path = self.samples[index]
        image = _read_rgb(image_path)
        train_ids = self._label_to_train_ids(label_path)
        height, width = train_ids.shape
        if image.size != (width, height):
            if not self.resize_image_to_label:
                raise PipelineError(
                    f"image {image_path} is {image.size[0]}x{image.size[1]} but its label {label_path} is "
                    f"{width}x{height}; replace the mismatched file with the original"
                )
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        from torchvision import tv_tensors
        image_t = tv_tensors.Image(torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous())
        mask_t = tv_tensors.Mask(torch.from_numpy(train_ids.astype(np.int64)))
        if self.transforms is not None:
            return self.transforms(image_t, mask_t)
        return image_t, mask_t

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} frames, {self.num_classes} classes)"


def _layout_error(dataset: str, problem: str, layout: str, fix: str) -> PipelineError:
    return PipelineError(f"{dataset} data not usable: {problem}; expected {layout}; {fix}")


def _missing_label(dataset: str, image: Path, label: Path, fix: str) -> PipelineError:
    return PipelineError(f"{dataset} image {image} has no label file {label}; {fix}")


# --------------------------------------------------------------------------------------
# Cityscapes
# --------------------------------------------------------------------------------------

_CITYSCAPES_FIX = ("download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
                   "https://www.cityscapes-dataset.com, unzip both into one folder and set data.roots.cityscapes to it")


class CityscapesDataset(SegmentationDataset):
    """Cityscapes fine annotations: ``<root>/leftImg8bit/{split}/<city>/<frame>_leftImg8bit.png``
    with ``<root>/gtFine/{split}/<city>/<frame>_gtFine_labelIds.png`` (label ids -> 19 train ids)."""

    name = "cityscapes"

    def __init__(self, root: str | os.PathLike[str], split: str = "train",
                 transforms: Transforms | None = None) -> None:
        root = Path(root).expanduser()
        self.root, self.split = root, split
        layout = (f"{root}/leftImg8bit/{split}/<city>/*_leftImg8bit.png with "
                  f"{root}/gtFine/{split}/<city>/*_gtFine_labelIds.png")
        if not root.is_dir():
            raise _layout_error("Cityscapes", f"root folder {root} does not exist", layout, _CITYSCAPES_FIX)
        for top in ("leftImg8bit", "gtFine"):
            if not (root / top / split).is_dir():
                found = sorted(p.name for p in (root / top).iterdir() if p.is_dir()) if (root / top).is_dir() else []
                where = f" (splits there: {', '.join(found)})" if found else ""
                raise _layout_error("Cityscapes", f"{root / top / split} is missing{where}", layout, _CITYSCAPES_FIX)
        samples = []
        suffix = "_leftImg8bit.png"
        for image in sorted((root / "leftImg8bit" / split).glob(f"*/*{suffix}")):
            frame = image.name[: -len(suffix)]
            label = root / "gtFine" / split / image.parent.name / f"{frame}_gtFine_labelIds.png"
            if not label.is_file():
                raise _missing_label("Cityscapes", image, label,
                                     "restore it from gtFine_trainvaltest.zip (https://www.cityscapes-dataset.com) "
                                     "or delete the image")
            samples.append((image, label))
        if not samples:
            raise _layout_error("Cityscapes", f"no image/label pairs under {root} for split {split!r}", layout,
                                _CITYSCAPES_FIX)
        super().__init__(samples, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, transforms)

    def _label_to_train_ids(self, label_path: Path) -> np.ndarray:
        return _map_ids(_read_label_ids(label_path), CITYSCAPES_LABEL_TO_TRAIN_ID, label_path)


# --------------------------------------------------------------------------------------
# GTA5
# --------------------------------------------------------------------------------------

_GTA5_FIX = ("download the image and label archives from https://download.visinf.tu-darmstadt.de/data/from_games/, "
             "unzip them into one folder and set data.roots.gta5 to it")


def _paired_by_name(dataset: str, root: Path, image_dir: Path, label_dir: Path, layout: str,
                    fix: str, label_fix: str) -> list[tuple[Path, Path]]:
    if not root.is_dir():
        raise _layout_error(dataset, f"root folder {root} does not exist", layout, fix)
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise _layout_error(dataset, f"{folder} is missing", layout, fix)
    samples = []
    for image in sorted(image_dir.glob("*.png")):
        label = label_dir / image.name
        if not label.is_file():
            raise _missing_label(dataset, image, label, label_fix)
        samples.append((image, label))
    if not samples:
        raise _layout_error(dataset, f"no .png images in {image_dir}", layout, fix)
    return samples


class GTA5Dataset(SegmentationDataset):
    """GTA5 ("Playing for Data"): ``<root>/images/<n>.png`` with ``<root>/labels/<n>.png``.

    Labels are palette PNGs whose indices are Cityscapes label ids. When an image's size
    differs from its label's (a few frames), the image is resized bilinearly to the label
    size; labels are never interpolated.
    """

    name = "gta5"
    resize_image_to_label = True

    def __init__(self, root: str | os.PathLike[str], transforms: Transforms | None = None) -> None:
        root = Path(root).expanduser()
        self.root = root
        layout = f"{root}/images/*.png with matching {root}/labels/*.png"
        samples = _paired_by_name("GTA5", root, root / "images", root / "labels", layout, _GTA5_FIX,
                                  "restore it from the labels archives "
                                  "(https://download.visinf.tu-darmstadt.de/data/from_games/) or delete the image")
        super().__init__(samples, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, transforms)

    def _label_to_train_ids(self, label_path: Path) -> np.ndarray:
        return _map_ids(_read_label_ids(label_path), CITYSCAPES_LABEL_TO_TRAIN_ID, label_path)


# --------------------------------------------------------------------------------------
# SYNTHIA-RAND-CITYSCAPES
# --------------------------------------------------------------------------------------

_SYNTHIA_FIX = ("download SYNTHIA-RAND-CITYSCAPES from https://synthia-dataset.net/downloads/, unzip it and set "
                "data.roots.synthia to the folder that holds RGB/ and GT/")


class SynthiaDataset(SegmentationDataset):
    """SYNTHIA-RAND-CITYSCAPES: ``<root>/RGB/<n>.png`` with ``<root>/GT/LABELS/<n>.png``.

    Masks use the 19 Cityscapes train ids (via :data:`SYNTHIA_TO_TRAIN_ID`); only the 16
    ids in :data:`SYNTHIA_EVAL_CLASSES` ever occur and are scored (``eval_classes``).
    """

    name = "synthia"

    def __init__(self, root: str | os.PathLike[str], transforms: Transforms | None = None) -> None:
        root = Path(root).expanduser()
        self.root = root
        layout = f"{root}/RGB/*.png with matching 16-bit {root}/GT/LABELS/*.png"
        samples = _paired_by_name("SYNTHIA", root, root / "RGB", root / "GT" / "LABELS", layout, _SYNTHIA_FIX,
                                  "restore it from the SYNTHIA-RAND-CITYSCAPES archive or delete the image")
        super().__init__(samples, CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, transforms,
                         eval_classes=SYNTHIA_EVAL_CLASSES)

    def _label_to_train_ids(self, label_path: Path) -> np.ndarray:
        return _map_ids(_read_png_channel0(label_path), _SYNTHIA_LUT, label_path)


# --------------------------------------------------------------------------------------
# A user's own folder
# --------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class FolderSegmentationDataset(SegmentationDataset):
    """A user's data: ``<root>/images/<stem>.<png|jpg|...>`` with ``<root>/labels/<stem>.png``.

    ``classes`` names the train ids 0..C-1; ``mapping`` maps each label id found in the PNGs
    to a train id (or to 255 to ignore it); pixels equal to ``ignore_id`` become 255. Any other
    id in a label file is an error naming the file and the ids. ``name`` only picks the
    params key (``data.folders.<name>.root``) quoted in error messages.
    """

    def __init__(self, root: str | os.PathLike[str], classes: Sequence[str], mapping: Mapping[int, int],
                 ignore_id: int = IGNORE_INDEX, transforms: Transforms | None = None,
                 palette: Sequence[Color] | None = None, name: str = "folder") -> None:
        root = Path(root).expanduser()
        self.root, self.name = root, name
        key = f"data.folders.{name}.root"
        classes = tuple(str(c) for c in classes)
        if not classes or len(set(classes)) != len(classes) or len(classes) > IGNORE_INDEX:
            raise PipelineError(
                f"{name}: class list must hold 1..255 distinct names, got {len(classes)} "
                f"({len(set(classes))} distinct); fix the class list for {key}"
            )
        clean: dict[int, int] = {}
        for label_id, train_id in dict(mapping).items():
            if not (isinstance(label_id, (int, np.integer)) and isinstance(train_id, (int, np.integer))):
                raise PipelineError(f"{name}: label mapping entry {label_id!r}: {train_id!r} is not int -> int; "
                                    "write the mapping as {label_id: train_id} with integers")
            if not 0 <= int(label_id) < (1 << 16):
                raise PipelineError(f"{name}: label id {label_id} in the mapping is outside 0..65535; "
                                    "label PNGs hold 8- or 16-bit ids")
            if not (0 <= int(train_id) < len(classes) or int(train_id) == IGNORE_INDEX):
                raise PipelineError(
                    f"{name}: label id {label_id} maps to train id {train_id}, outside 0..{len(classes) - 1} "
                    f"and not {IGNORE_INDEX} (ignore); map it to a class index or to {IGNORE_INDEX}"
                )
            clean[int(label_id)] = int(train_id)
        if not 0 <= int(ignore_id) < (1 << 16):
            raise PipelineError(f"{name}: ignore_id {ignore_id} is outside 0..65535; use the id your label "
                                "PNGs use for unlabelled pixels (often 255)")
        if int(ignore_id) in clean and clean[int(ignore_id)] != IGNORE_INDEX:
            raise PipelineError(
                f"{name}: ignore_id {ignore_id} is also mapped to train id {clean[int(ignore_id)]}; "
                "drop it from the mapping or choose another ignore_id"
            )
        self.mapping: dict[int, int] = clean
        self.ignore_id = int(ignore_id)
        self._valid_ids = np.array(sorted(set(clean) | {self.ignore_id}), dtype=np.int64)
        self._lut = _lut_from_mapping({**clean, self.ignore_id: IGNORE_INDEX}, int(self._valid_ids.max()) + 1)

        fix = (f"put images in {root}/images and label PNGs with the same file stems in {root}/labels, and point "
               f"{key} at {root}")
        layout = f"{root}/images/<stem>.{{{','.join(s[1:] for s in IMAGE_SUFFIXES)}}} with {root}/labels/<stem>.png"
        if not root.is_dir():
            raise _layout_error(name, f"root folder {root} does not exist", layout, fix)
        for folder in (root / "images", root / "labels"):
            if not folder.is_dir():
                raise _layout_error(name, f"{folder} is missing", layout, fix)
        images: dict[str, Path] = {}
        for path in sorted((root / "images").iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            if path.stem in images:
                raise PipelineError(f"{name}: {images[path.stem]} and {path} share the stem {path.stem!r}, so "
                                    "their label is ambiguous; rename or remove one")
            images[path.stem] = path
        samples = []
        for stem, image in images.items():
            label = root / "labels" / f"{stem}.png"
            if not label.is_file():
                raise _missing_label(name, image, label, "add the label PNG or remove the image")
            samples.append((image, label))
        if not samples:
            raise _layout_error(name, f"no images in {root / 'images'}", layout, fix)
        if palette is None:
            palette = palette_for(classes)
        elif len(palette) != len(classes):
            raise PipelineError(f"{name}: palette has {len(palette)} colours for {len(classes)} classes; "
                                "give one (r, g, b) per class or leave it out")
        super().__init__(samples, classes, palette, transforms)

    def _label_to_train_ids(self, label_path: Path) -> np.ndarray:
        ids = _read_label_ids(label_path)
        present = np.unique(ids)
        bad = present[~np.isin(present, self._valid_ids)]
        if bad.size:
            where = f" (data.folders.{self.name}.ids)" if self.name != "folder" else ""
            raise PipelineError(
                f"label file {label_path} holds ids {_fmt_ids(bad)} that are neither in the label mapping{where} nor "
                f"the ignore id {self.ignore_id}; add them to the mapping (label_id -> train_id) or fix the file"
            )
        return self._lut[ids]
