"""MNIST-M: grey digits blended over crops of colour photographs (no download).

After Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015,
section 4: "MNIST-M ... is obtained by blending digits from the original set over
patches randomly extracted from color photos from BSDS500", the blend being the
per-channel absolute difference ``|patch - digit|`` (Ganin et al., JMLR 2016, 17(59),
section 5.2.2). BSDS500 needs a download, so the photos here are the colour images that
scikit-image ships inside its wheel (``skimage.data``); ones that would need a download
in the installed version are skipped.

Crops come at several scales: each photo is downsampled once into a pyramid (antialiased
box filter), and a crop of the digit's size from a level is a crop of ``size / scale``
photo pixels resized to the digit size, so backgrounds carry texture rather than flat
colour.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
from PIL import Image

from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError

# Colour photographs bundled with scikit-image (checked offline for 0.26). "cat" is an
# alias of "chelsea"; "colorwheel" and "logo" are synthetic graphics and left out.
PHOTO_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
)
# Photo downscale factors of the pyramid: a crop covers size/scale photo pixels.
SCALES = (0.6, 0.42, 0.3, 0.21, 0.15, 0.1)
MIN_CROP_STD = 10.0  # grey-level std below which a crop counts as flat
MAX_REDRAWS = 4
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, for colour inputs


def _load_photo(name: str) -> np.ndarray | None:
    """One skimage photo as (H, W, 3) uint8, or None when it is unavailable offline."""
    import skimage.data

    loader: Callable[[], object] | None = getattr(skimage.data, name, None)
    if loader is None:
        return None
    try:
        img = loader()
    except Exception:  # noqa: BLE001 - a photo that needs pooch/network is simply skipped
        return None
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        return None
    if name == "retina":  # keep the fundus, drop the black corners around it
        h, w = img.shape[:2]
        img = img[int(0.22 * h) : int(0.78 * h), int(0.22 * w) : int(0.78 * w)]
    return np.ascontiguousarray(img)


@functools.lru_cache(maxsize=2)
def photo_pyramid(min_side: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Per available photo, its scale levels that are at least ``min_side`` pixels on both sides."""
    pyramid = []
    for name in PHOTO_NAMES:
        photo = _load_photo(name)
        if photo is None:
            continue
        pil = Image.fromarray(photo)
        levels = []
        for scale in SCALES:
            w, h = round(photo.shape[1] * scale), round(photo.shape[0] * scale)
            if min(w, h) >= min_side:
                levels.append(np.asarray(pil.resize((w, h), Image.Resampling.BOX)))
        if levels:
            pyramid.append(tuple(levels))
    if not pyramid:
        raise PipelineError(
            "none of scikit-image's bundled colour photos could be loaded for MNIST-M; reinstall scikit-image "
            "(pip install --force-reinstall scikit-image)"
        )
    return tuple(pyramid)


def _grey(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float grey levels of uint8 (N, H, W, 1|3) images."""
    if images.shape[-1] == 1:
        return images[..., 0].astype(np.int16)
    return np.rint(images.astype(np.float64) @ LUMA).astype(np.int16)


def _sample_crops(n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(n, h, w, 3) uint8 crops: photo uniformly, scale uniformly among its levels, position uniformly."""
    pyramid = photo_pyramid(max(h, w))
    levels = [level for photo_levels in pyramid for level in photo_levels]
    first = np.cumsum([0] + [len(photo_levels) for photo_levels in pyramid])
    photo_idx = rng.integers(0, len(pyramid), n)
    level_idx = first[photo_idx] + (rng.random(n) * np.diff(first)[photo_idx]).astype(np.int64)
    u = rng.random((n, 2))
    flip = rng.random(n) < 0.5
    crops = np.empty((n, h, w, 3), dtype=np.uint8)
    rows, cols = np.arange(h), np.arange(w)
    for k, level in enumerate(levels):
        sel = np.flatnonzero(level_idx == k)
        if len(sel) == 0:
            continue
        y0 = (u[sel, 0] * (level.shape[0] - h + 1)).astype(np.int64)
        x0 = (u[sel, 1] * (level.shape[1] - w + 1)).astype(np.int64)
        crops[sel] = level[y0[:, None, None] + rows[None, :, None], x0[:, None, None] + cols[None, None, :]]
    crops[flip] = crops[flip, :, ::-1]
    return crops


def _blend_split(split: Split, rng: np.random.Generator) -> Split:
    n, h, w = split.images.shape[:3]
    crops = _sample_crops(n, h, w, rng)
    # Redraw near-flat crops (sky, the fundus' plain orange) a few times: textured backgrounds.
    for _ in range(MAX_REDRAWS):
        flat = np.flatnonzero(_grey(crops).reshape(n, -1).std(axis=1) < MIN_CROP_STD)
        if len(flat) == 0:
            break
        crops[flat] = _sample_crops(len(flat), h, w, rng)
    blended = np.abs(crops.astype(np.int16) - _grey(split.images)[..., None])
    return Split(blended.astype(np.uint8), split.labels.copy())


def build_mnistm(digits: DomainData, seed: int) -> DomainData:
    """MNIST-M domain from grey digits: (N, H, W, 3) uint8 with ``|photo crop - digit|``, same labels and splits."""
    rng = np.random.default_rng(seed)
    return DomainData(
        name="mnistm",
        train=_blend_split(digits.train, rng),
        test=_blend_split(digits.test, rng),
        classes=digits.classes,
    )
