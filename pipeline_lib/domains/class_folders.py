"""A user's classification domain laid out one folder per class (``data.folders.<name>`` with ``layout: classes``).

``<root>/<class>/<image>``, as torchvision's :class:`~torchvision.datasets.ImageFolder` reads it (Office-31,
Office-Home, VisDA, DomainNet): the files are listed with torchvision's own ``make_dataset`` (its image
extensions, sorted), every image is decoded once with PIL (EXIF orientation applied; grey, palette, alpha and
16-bit images to 8-bit RGB), its shorter side resized to ``size`` and the centre square kept, and the domain is
stored like the digit sets: one ``.npz`` in memory (N x size x size x 3 bytes). A backbone resizes again to
its own input side when it loads the domain (:mod:`pipeline_lib.domains.transforms`).

The test split is chosen within each class on its files sorted by name (see
:class:`~pipeline_lib.config.FolderDomainParams`), so every class is in both splits. A file that cannot be
decoded stops with one line naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipeline_lib.config import FolderDomainParams
from pipeline_lib.domains.base import DomainData, Split, check_held_out, held_out_by_name
from pipeline_lib.domains.decode import DECODE_ERRORS, to_rgb
from pipeline_lib.errors import PipelineError

__all__ = ["build_class_folder", "list_images", "read_image", "test_mask"]


def list_images(root: Path, classes: tuple[str, ...], key: str) -> list[tuple[Path, int]]:
    """``(path, class index)`` of every image under ``root/<class>/``, classes in ``classes`` order, files sorted."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    if not root.is_dir():
        raise PipelineError(f"{key}.root: {root} is not a folder; point it at the folder holding one sub-folder "
                            "per class (<root>/<class>/<image>)")
    missing = [c for c in classes if not (root / c).is_dir()]
    if missing:
        raise PipelineError(f"{key}.classes: {len(missing)} class(es) have no folder in {root} (e.g. {missing[0]!r}); "
                            "each class is a sub-folder named exactly as listed")
    samples = make_dataset(str(root), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS,
                           allow_empty=True)
    counts = np.bincount([i for _, i in samples], minlength=len(classes))
    if (counts == 0).any():
        empty = classes[int(np.flatnonzero(counts == 0)[0])]
        raise PipelineError(f"{key}: class folder {root / empty} holds no image ({', '.join(IMG_EXTENSIONS)}); add "
                            "images or drop the class from classes:")
    return [(Path(p), int(i)) for p, i in samples]


def read_image(path: Path, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3): EXIF orientation, any mode to RGB, shorter side to ``size``, centre crop."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.fit(to_rgb(im), (size, size), method=Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except DECODE_ERRORS as exc:
        detail = " ".join(str(exc).split())
        raise PipelineError(f"{path} is not a readable image ({type(exc).__name__}: {detail}); replace or delete "
                            "it") from None


def test_mask(samples: list[tuple[Path, int]], classes: tuple[str, ...], spec: FolderDomainParams,
              name: str) -> np.ndarray:
    """Which of ``samples`` (sorted by class, then name) form the test split, by the folder's one rule."""
    key = f"data.folders.{name}"
    names = [(p.stem, f"{classes[i]}/{p.stem}") for p, i in samples]
    named = held_out_by_name(names, spec.test_stems, spec.test_glob, name, key, "image", spec.root)
    if named is None:
        labels = np.array([i for _, i in samples])
        mask, rule = np.zeros(len(samples), bool), f"{key}.test_fraction {spec.test_fraction}"
        for c in range(len(classes)):
            idx = np.flatnonzero(labels == c)  # the class's files, sorted by name
            n_test = min(int(round(len(idx) * spec.test_fraction)), len(idx) - 1)
            mask[idx[len(idx) - n_test:] if n_test else []] = True
        if not mask.any():
            raise PipelineError(f"{name}: {len(samples)} image(s) cannot be split into train and test by {rule}; add "
                                "images or raise the fraction (or hold out images with test_stems/test_glob)")
        named = mask, rule
    check_held_out(*named, name, "image")
    return named[0]


def build_class_folder(name: str, spec: FolderDomainParams, classes: tuple[str, ...], seed: int) -> DomainData:
    """Decode, resize and split a class-per-folder domain into a :class:`DomainData`; each split is stored in a
    ``seed``-ed random order, as the digit sets are (:func:`~pipeline_lib.domains.base.stratified_split`)."""
    from tqdm import tqdm

    samples = list_images(Path(spec.root), classes, f"data.folders.{name}")
    mask = test_mask(samples, classes, spec, name)
    images = np.empty((len(samples), spec.size, spec.size, 3), np.uint8)
    for k, (path, _) in enumerate(tqdm(samples, desc=f"prepare {name}", unit="image", leave=False,
                                       disable=len(samples) < 500)):
        images[k] = read_image(path, spec.size)
    labels = np.array([i for _, i in samples], np.int64)
    rng = np.random.default_rng(seed)
    train, test = rng.permutation(np.flatnonzero(~mask)), rng.permutation(np.flatnonzero(mask))
    return DomainData(name, Split(images[train], labels[train]), Split(images[test], labels[test]), classes)
