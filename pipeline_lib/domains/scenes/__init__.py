"""Scenes: procedurally generated street scenes labelled with the 19 Cityscapes train ids.

The embedded stand-in for GTA5 -> Cityscapes (SPEC section 3, ``scenes_game`` and
``scenes_photo``). One layout sampler, :func:`sample_layout`, builds a street in a
simple pinhole-camera world (camera ``cam_h`` metres above a flat ground, looking down
a straight road towards a vanishing point on the horizon) and rasterises it with the
painter's algorithm into an instance map; labels, sub-object parts (windows, lane
markings, wheels, glass, skin, ...), per-pixel depth and surface coordinates all follow
from that map. Two renderers turn the same kind of layout into images:

- :func:`render_game`: saturated flat colours with per-object variation, crisp cel
  shading, dark outlines, regular synthetic textures (bricks, tiles, mowed stripes,
  cartoon clouds) and hard cast shadows, i.e. a video-game look;
- :func:`render_photo`: a desaturated realistic palette, fine-grained textures, soft
  shadows or overcast light, aerial haze, global colour temperature and exposure
  changes, vignetting, lens blur, sensor noise and a JPEG round trip.

Both styles draw their layouts from the same distribution (so the label statistics are
shared and only appearance differs: the domain gap) but from different random streams,
so the two domains never show the same street. Everything is seeded through
``np.random.default_rng``; no global random state is touched.

Labels: 0..18 are the Cityscapes train ids (:data:`CITYSCAPES_CLASSES`); 255
(:data:`IGNORE_LABEL`) marks the ego vehicle's bonnet, which about half the frames show
at the bottom, as in Cityscapes.

The code is split by job: :mod:`~pipeline_lib.domains.scenes.labels` (train ids from the one Cityscapes label
table, parts), :mod:`~pipeline_lib.domains.scenes.geometry` (camera, projection, rasterising canvas, clipping,
visibility), :mod:`~pipeline_lib.domains.scenes.objects` (object drawers),
:mod:`~pipeline_lib.domains.scenes.layout` (the layout sampler) and :mod:`~pipeline_lib.domains.scenes.renderers`
(materials, palettes, shadows and both renderers); this module holds :func:`build_scenes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from pipeline_lib.domains.scenes.geometry import Camera, Shape, Solid
from pipeline_lib.domains.scenes.labels import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, IGNORE_LABEL, NUM_SCENE_CLASSES
from pipeline_lib.domains.scenes.layout import Layout, sample_layout
from pipeline_lib.domains.scenes.renderers import render_game, render_photo
from pipeline_lib.errors import PipelineError

__all__ = [
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_PALETTE",
    "IGNORE_LABEL",
    "NUM_SCENE_CLASSES",
    "STYLES",
    "Camera",
    "Layout",
    "Shape",
    "Solid",
    "build_scenes",
    "render_game",
    "render_photo",
    "sample_layout",
]

STYLES = ("game", "photo")
_STYLE_STREAM = {"game": 0x47414D45, "photo": 0x50484F54}
_RENDERERS: dict[str, Callable[[Layout, np.random.Generator], np.ndarray]] = {
    "game": render_game, "photo": render_photo,
}


def build_scenes(
    style: Literal["game", "photo"],
    n_train: int,
    n_test: int,
    seed: int,
    height: int = 128,
    width: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Render ``n_train + n_test`` street scenes in one style.

    Returns (train_images (N, H, W, 3) uint8, train_masks (N, H, W) uint8 with values in
    0..18 or 255, test_images, test_masks). Deterministic in ``seed``; the two styles use
    different random streams, so with the same seed they still show different streets.
    Each frame has its own child seed, so a frame does not depend on the frame count.
    """
    if style not in _RENDERERS:
        raise PipelineError(f"unknown scenes style {style!r}; use one of {', '.join(STYLES)}")
    if int(n_train) < 1 or int(n_test) < 1:
        raise PipelineError(f"scenes need n_train >= 1 and n_test >= 1, got n_train={n_train}, n_test={n_test}")
    if int(height) < 32 or int(width) < 32:
        raise PipelineError(f"scenes frames must be at least 32x32 pixels, got {height}x{width}; use e.g. 128x256")
    if int(seed) < 0:
        raise PipelineError(f"scenes seed must be a non-negative integer, got {seed}")
    n = int(n_train) + int(n_test)
    H, W = int(height), int(width)
    images = np.empty((n, H, W, 3), np.uint8)
    masks = np.empty((n, H, W), np.uint8)
    render = _RENDERERS[style]
    root = np.random.SeedSequence([int(seed), _STYLE_STREAM[style]])
    for i, child in enumerate(root.spawn(n)):
        layout_seq, render_seq = child.spawn(2)
        layout = sample_layout(np.random.default_rng(layout_seq), H, W)
        images[i] = render(layout, np.random.default_rng(render_seq))
        masks[i] = layout.labels
    return images[:n_train], masks[:n_train], images[n_train:], masks[n_train:]
