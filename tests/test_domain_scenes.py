"""Scenes: procedurally generated street scenes (scenes_game -> scenes_photo)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_lib.domains import segmentation
from pipeline_lib.domains.scenes import (
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    IGNORE_LABEL,
    build_scenes,
    render_game,
    render_photo,
    sample_layout,
)
from pipeline_lib.errors import PipelineError

N_TRAIN, N_TEST = 30, 10
H, W = 128, 256
ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 5, 7, 8, 10, 11, 13


@pytest.fixture(scope="module")
def game():
    return build_scenes("game", N_TRAIN, N_TEST, seed=0)


@pytest.fixture(scope="module")
def photo():
    return build_scenes("photo", N_TRAIN, N_TEST, seed=0)


def _frames(data):
    train_images, train_masks, test_images, test_masks = data
    return np.concatenate([train_images, test_images]), np.concatenate([train_masks, test_masks])


def _class_freq(masks: np.ndarray) -> np.ndarray:
    return np.bincount(masks.ravel(), minlength=256)[:19] / masks.size


def test_class_names_and_palette():
    assert len(CITYSCAPES_CLASSES) == 19 == len(CITYSCAPES_PALETTE)
    assert CITYSCAPES_CLASSES[ROAD] == "road" and CITYSCAPES_CLASSES[SKY] == "sky"
    assert CITYSCAPES_CLASSES[CAR] == "car" and CITYSCAPES_CLASSES[18] == "bicycle"
    # one label table: the scenes use the names and colours of the segmentation datasets
    assert CITYSCAPES_CLASSES == segmentation.CITYSCAPES_CLASSES and IGNORE_LABEL == segmentation.IGNORE_INDEX
    assert CITYSCAPES_PALETTE.dtype == np.uint8 and CITYSCAPES_PALETTE.shape == (19, 3)
    assert CITYSCAPES_PALETTE.tolist() == [list(c) for c in segmentation.CITYSCAPES_PALETTE]


def test_shapes_and_dtypes(game, photo):
    for data in (game, photo):
        train_images, train_masks, test_images, test_masks = data
        assert train_images.shape == (N_TRAIN, H, W, 3) and test_images.shape == (N_TEST, H, W, 3)
        assert train_masks.shape == (N_TRAIN, H, W) and test_masks.shape == (N_TEST, H, W)
        for arr in data:
            assert arr.dtype == np.uint8


def test_label_values(game, photo):
    for data in (game, photo):
        _, masks = _frames(data)
        values = set(np.unique(masks).tolist())
        assert values <= set(range(19)) | {IGNORE_LABEL}
        assert IGNORE_LABEL in values  # the ego bonnet shows in about half the frames
        assert (masks == IGNORE_LABEL).mean() < 0.1


def test_custom_size_and_bad_arguments():
    images, masks, test_images, test_masks = build_scenes("photo", 2, 1, seed=3, height=64, width=96)
    assert images.shape == (2, 64, 96, 3) and masks.shape == (2, 64, 96)
    assert test_images.shape == (1, 64, 96, 3) and test_masks.shape == (1, 64, 96)
    with pytest.raises(PipelineError, match="style"):
        build_scenes("cartoon", 2, 1, seed=0)  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="n_train"):
        build_scenes("game", 0, 1, seed=0)
    with pytest.raises(PipelineError, match="32x32"):
        build_scenes("game", 1, 1, seed=0, height=16)
    with pytest.raises(PipelineError, match="seed"):
        build_scenes("game", 1, 1, seed=-1)


def test_deterministic_per_seed():
    a = build_scenes("game", 3, 2, seed=7)
    b = build_scenes("game", 3, 2, seed=7)
    c = build_scenes("game", 3, 2, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    for x, z in zip(a, c):
        assert not np.array_equal(x, z)
    # each frame has its own child seed: frames do not depend on how many are drawn
    d = build_scenes("game", 4, 1, seed=7)
    np.testing.assert_array_equal(a[0], d[0][:3])
    np.testing.assert_array_equal(a[2][0], d[0][3])
    np.testing.assert_array_equal(a[3][0], d[1][3])


def test_styles_draw_different_streets(game, photo):
    _, game_masks = _frames(game)
    _, photo_masks = _frames(photo)
    same = [np.array_equal(g, p) for g, p in zip(game_masks, photo_masks)]
    assert not any(same)


def test_styles_share_the_label_distribution(game, photo):
    fg = _class_freq(_frames(game)[1])
    fp = _class_freq(_frames(photo)[1])
    assert np.abs(fg - fp).max() < 0.06, np.round(fg - fp, 3)
    assert np.abs(fg - fp).sum() < 0.2
    for freq in (fg, fp):  # plausible: the big stuff classes dominate, things are small
        for cls in (ROAD, BUILDING, VEGETATION, SIDEWALK, SKY):
            assert freq[cls] > 0.02, (CITYSCAPES_CLASSES[cls], freq[cls])
        assert freq[ROAD] > freq[CAR] > freq[PERSON] > 0


def _saturation(images: np.ndarray) -> float:
    x = images.astype(np.float32)
    hi, lo = x.max(-1), x.min(-1)
    return float(((hi - lo) / np.maximum(hi, 1.0)).mean())


def _laplacian_energy(images: np.ndarray) -> float:
    g = images.astype(np.float32).mean(-1)
    lap = 4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1] - g[:, 1:-1, :-2] - g[:, 1:-1, 2:]
    return float(np.abs(lap).mean())


def test_styles_differ_in_appearance(game, photo):
    gi, gm = _frames(game)
    pi, pm = _frames(photo)
    assert _saturation(gi) > 1.8 * _saturation(pi)  # saturated flat colours vs muted palette
    assert _laplacian_energy(gi) > 2.0 * _laplacian_energy(pi)  # crisp edges vs blurred photo
    # other palettes: the mean colour of a class moves between the styles
    dist = {cls: np.linalg.norm(gi[gm == cls].mean(0) - pi[pm == cls].mean(0))
            for cls in (ROAD, SIDEWALK, BUILDING, VEGETATION, SKY)}
    assert dist[VEGETATION] > 30.0 and dist[SKY] > 30.0, dist
    assert np.mean(list(dist.values())) > 30.0, dist


def test_many_classes_present(game, photo):
    for data in (game, photo):
        _, masks = _frames(data)
        present = set(np.unique(masks).tolist()) - {IGNORE_LABEL}
        assert len(present) >= 12, sorted(present)
        assert {ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR} <= present


def test_sky_above_road(game, photo):
    rows = np.arange(H)[None, :, None]
    for data in (game, photo):
        _, masks = _frames(data)
        row = np.broadcast_to(rows, masks.shape)
        assert row[masks == SKY].mean() + 30 < row[masks == ROAD].mean()
        per_frame = [row[0][m == SKY].mean() < row[0][m == ROAD].mean()
                     for m in masks if (m == SKY).any() and (m == ROAD).any()]
        assert np.mean(per_frame) > 0.95


def _colour_cell_classifier(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Majority label per 32-level RGB cell (8^3 cells); empty cells -> overall majority."""
    cell = (images.reshape(-1, 3) // 32).astype(np.int64) @ np.array([64, 8, 1])
    y = masks.ravel().astype(np.int64)
    keep = y != IGNORE_LABEL
    votes = np.zeros((512, 19))
    np.add.at(votes, (cell[keep], y[keep]), 1.0)
    table = votes.argmax(1)
    table[votes.sum(1) == 0] = np.bincount(y[keep], minlength=19).argmax()
    return table


def _accuracy(table: np.ndarray, images: np.ndarray, masks: np.ndarray) -> float:
    cell = (images.reshape(-1, 3) // 32).astype(np.int64) @ np.array([64, 8, 1])
    y = masks.ravel()
    keep = y != IGNORE_LABEL
    return float((table[cell[keep]] == y[keep]).mean())


def test_colour_predicts_label_so_images_and_masks_are_paired(game):
    images, masks = _frames(game)
    fit_x, fit_y, test_x, test_y = images[:10], masks[:10], images[20:30], masks[20:30]
    acc = _accuracy(_colour_cell_classifier(fit_x, fit_y), test_x, test_y)
    # a broken pairing (each image with another frame's mask) learns far less
    broken = _accuracy(_colour_cell_classifier(fit_x, np.roll(fit_y, 1, axis=0)), test_x, test_y)
    keep = test_y != IGNORE_LABEL
    majority = float((test_y[keep] == np.bincount(fit_y[fit_y != IGNORE_LABEL]).argmax()).mean())
    assert acc > majority + 0.25, (acc, majority)
    assert acc > broken + 0.1, (acc, broken)


def test_layout_and_renderers_api():
    layout = sample_layout(np.random.default_rng(0), 64, 128)
    assert layout.labels.shape == (64, 128) and layout.labels.dtype == np.uint8
    np.testing.assert_array_equal(layout.inst_class[layout.instances], layout.labels)
    assert layout.depth.shape == (64, 128) and np.all(layout.depth > 0)
    assert layout.depth[layout.labels == SKY].min() > layout.depth[layout.labels != SKY].max()
    g1 = render_game(layout, np.random.default_rng(1))
    g2 = render_game(layout, np.random.default_rng(1))
    p = render_photo(layout, np.random.default_rng(1))
    assert g1.shape == p.shape == (64, 128, 3) and g1.dtype == p.dtype == np.uint8
    np.testing.assert_array_equal(g1, g2)
    assert np.abs(g1.astype(int) - p.astype(int)).mean() > 10
