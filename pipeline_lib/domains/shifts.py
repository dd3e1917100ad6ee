"""Paired synthetic domain shifts ``D2 = T(D1)`` after the GIMP filters of feature-map regression (sec. 4.1).

No GIMP code is used; each transform builds what the filter's name describes, with numpy only:

* ``photocopy`` (T1, colour and saturation change, keeps alignment): luma lightly blurred (3x3, GIMP
  *sharpness*) divided by its local box mean (GIMP *mask radius* ``max(2, min(H, W) / 16)``), a sigmoid
  around ratio 1 of steepness ``4 + 16 * strength``, mapped between an ink and a warm paper level (GIMP
  *percent black / white* stand as these fixed dark / light levels and the sigmoid's bias toward paper,
  which turns flat areas light), blended with the original by ``strength``. Seed-free; masks come back
  unchanged (a copy).
* ``ripple`` (T2, misalignment): sinusoidal displacement, ``dx`` a function of ``y`` and ``dy`` of ``x``
  (GIMP *orientation*: both at once), per-image random phases, *amplitude* ``0.08 * strength *
  min(H, W)``, *period* ``H / 4`` for ``dx`` and ``W / 4`` for ``dy``. Images are sampled
  bilinearly, masks with nearest.
* ``cubism`` (T3, texture change + misalignment + edge noise): square tiles of side
  ``max(2, round(strength * min(H, W) / 6))`` (GIMP *tile size*) on a random grid origin, each moved by
  a random offset of up to a third of its side, tile borders jittered per pixel by +-1 px (+-2 px for
  tiles of 6 px or more), tile content blended toward its mean colour by ``0.8 * strength`` (GIMP
  *tile saturation*). Integer offsets: image and mask follow the same mapping.

Borders replicate (no holes), so ignored pixels (255) move like any label and none are introduced.
Image ``i`` draws its randomness from ``np.random.default_rng([seed, i])`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pipeline_lib.config import ShiftedDomainParams
    from pipeline_lib.domains.base import DomainData

SHIFTS: tuple[str, ...] = ("photocopy", "ripple", "cubism")
GEOMETRIC: frozenset[str] = frozenset({"ripple", "cubism"})

_CHUNK = 512                                  # images per vectorised block (bounds memory)
_LUMA = np.array([0.299, 0.587, 0.114])
_INK = {1: np.array([0.09]), 3: np.array([0.10, 0.09, 0.08])}
_PAPER = {1: np.array([0.94]), 3: np.array([0.96, 0.94, 0.89])}


def apply_shift(name: str, images: np.ndarray, strength: float, seed: int,
                masks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """images: uint8 (N, H, W, C), C in {1, 3}; masks: optional integer label maps (N, H, W) for segmentation.
    Returns (shifted images: uint8, same shape; shifted masks: same dtype/shape, or None when masks is None).
    Ignored pixels (255) move like any label (borders replicate, so none are introduced)."""
    if name not in SHIFTS:
        raise ValueError(f"unknown shift {name!r}; expected one of {SHIFTS}")
    strength = float(strength)
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"shift strength must be in the range (0, 1], got {strength}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, H, W, C) with C in {{1, 3}}, got {images.dtype} {images.shape}")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != images.shape[:3] or not np.issubdtype(masks.dtype, np.integer):
            raise ValueError(f"masks must be integer (N, H, W) = {images.shape[:3]}, got {masks.dtype} {masks.shape}")
    n = len(images)
    if name == "photocopy" or n == 0:
        out = images.copy() if n == 0 else np.concatenate(
            [_photocopy(images[s:s + _CHUNK], strength) for s in range(0, n, _CHUNK)])
        return out, None if masks is None else masks.copy()
    out_img = np.empty_like(images)
    out_mask = None if masks is None else np.empty_like(masks)
    for s in range(0, n, _CHUNK):
        idx = range(s, min(s + _CHUNK, n))
        if name == "ripple":
            sy, sx = _ripple_coords(images.shape[1:3], strength, seed, idx)
            out_img[s:idx.stop] = _bilinear(images[s:idx.stop], sy, sx)
            if masks is not None and out_mask is not None:
                k = np.arange(len(idx))[:, None, None]
                out_mask[s:idx.stop] = masks[s:idx.stop][k, np.rint(sy).astype(np.intp), np.rint(sx).astype(np.intp)]
        else:
            for i in idx:
                out_img[i], m = _cubism(images[i], strength, np.random.default_rng([seed, i]),
                                        None if masks is None else masks[i])
                if out_mask is not None:
                    out_mask[i] = m
    return out_img, out_mask


def _box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window with replicated borders, for x of shape (n, H, W)."""
    n, h, w = x.shape
    p = np.pad(x, ((0, 0), (r, r), (r, r)), mode="edge")
    c = np.zeros((n, h + 2 * r + 1, w + 2 * r + 1))
    c[:, 1:, 1:] = p.cumsum(1).cumsum(2)
    k = 2 * r + 1
    return (c[:, k:, k:] - c[:, :h, k:] - c[:, k:, :w] + c[:, :h, :w]) / (k * k)


def _photocopy(images: np.ndarray, strength: float) -> np.ndarray:
    x = images.astype(np.float64) / 255.0
    ch = x.shape[-1]
    luma = x @ _LUMA if ch == 3 else x[..., 0]
    sharp = _box_mean(luma, 1)                                        # GIMP sharpness: a small blur
    ratio = (sharp + 0.1) / (_box_mean(luma, max(2, round(min(x.shape[1:3]) / 16))) + 0.1)
    steep = 4.0 + 16.0 * strength
    v = 1.0 / (1.0 + np.exp(-np.clip(steep * (ratio - 1.0) + 2.0, -50, 50)))  # +2: flat areas -> paper
    copy = _INK[ch] + (_PAPER[ch] - _INK[ch]) * v[..., None]
    out = (1.0 - strength) * x + strength * copy
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _ripple_coords(hw: tuple[int, ...], strength: float, seed: int, idx: range) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates (n, H, W) for the images ``idx``, clipped to the image (replicate border)."""
    h, w = hw
    amp = 0.08 * strength * min(h, w)
    y, x = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    dx, dy = np.empty((len(idx), h)), np.empty((len(idx), w))
    for k, i in enumerate(idx):
        phase = np.random.default_rng([seed, i]).uniform(0.0, 2.0 * np.pi, 2)
        dx[k] = amp * np.sin(2.0 * np.pi * y / (h / 4.0) + phase[0])
        dy[k] = amp * np.sin(2.0 * np.pi * x / (w / 4.0) + phase[1])
    sy = np.clip(y[None, :, None] + dy[:, None, :], 0, h - 1)
    sx = np.clip(x[None, None, :] + dx[:, :, None], 0, w - 1)
    return sy, sx


def _bilinear(images: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    h, w = images.shape[1:3]
    y0, x0 = np.floor(sy).astype(np.intp), np.floor(sx).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    k = np.arange(len(images))[:, None, None]
    top = images[k, y0, x0] * (1 - wx) + images[k, y0, x1] * wx
    bot = images[k, y1, x0] * (1 - wx) + images[k, y1, x1] * wx
    return np.clip(np.rint(top * (1 - wy) + bot * wy), 0, 255).astype(np.uint8)


def _cubism(img: np.ndarray, strength: float, rng: np.random.Generator,
            mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """One image (H, W, C) and its optional mask (H, W)."""
    h, w, ch = img.shape
    side = max(2, round(strength * min(h, w) / 6))
    reach, jit = max(1, round(side / 3)), 1 if side < 6 else 2
    origin = rng.integers(0, side, 2)
    jy, jx = rng.integers(-jit, jit + 1, (2, h, w))
    nty, ntx = (h + 2 * side + jit) // side, (w + 2 * side + jit) // side
    offsets = rng.integers(-reach, reach + 1, (nty, ntx, 2))
    y, x = np.arange(h)[:, None], np.arange(w)[None, :]
    ty = np.clip((y + origin[0] + jy) // side, 0, nty - 1)
    tx = np.clip((x + origin[1] + jx) // side, 0, ntx - 1)
    sy = np.clip(y + offsets[ty, tx, 0], 0, h - 1)
    sx = np.clip(x + offsets[ty, tx, 1], 0, w - 1)
    moved = img[sy, sx].astype(np.float64)
    tile = (ty * ntx + tx).ravel()
    count = np.maximum(np.bincount(tile, minlength=nty * ntx), 1)
    means = np.stack([np.bincount(tile, moved[..., c].ravel(), nty * ntx) / count for c in range(ch)], -1)
    a = 0.8 * strength
    out = (1.0 - a) * moved + a * means[tile].reshape(h, w, ch)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), None if mask is None else mask[sy, sx]


def shift_domain(name: str, spec: "ShiftedDomainParams", base: "DomainData") -> "DomainData":
    """``base`` with both splits through ``spec``'s shift: image i of a split is image i of the base's split,
    shifted; digit labels are kept and masks move with the pixels. The splits draw from seeds 2s and 2s + 1."""
    from pipeline_lib.domains.base import DomainData, Split

    def shifted(split: Split, seed: int) -> Split:
        masks = split.labels if split.labels.ndim == 3 else None
        images, moved = apply_shift(spec.shift, split.images, spec.strength, seed, masks)
        return Split(images, moved if moved is not None else split.labels.copy())

    return DomainData(name, shifted(base.train, 2 * spec.seed), shifted(base.test, 2 * spec.seed + 1), base.classes)
