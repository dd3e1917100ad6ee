"""The paired GIMP-like domain shifts (photocopy, ripple, cubism) of pipeline_lib.domains.shifts."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_lib.domains.shifts import GEOMETRIC, SHIFTS, apply_shift


def _rectangles(n: int, h: int = 32, w: int = 48, c: int = 3, seed: int = 0) -> np.ndarray:
    """Structured images: a noisy background with a few coloured rectangles."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 40, (n, h, w, c)).astype(np.uint8)
    for img in out:
        for _ in range(4):
            y, x = rng.integers(0, h - 6), rng.integers(0, w - 6)
            img[y:y + rng.integers(4, h // 2), x:x + rng.integers(4, w // 2)] = rng.integers(60, 256, c)
    return out


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_the_api_names_the_three_filters():
    assert SHIFTS == ("photocopy", "ripple", "cubism")
    assert GEOMETRIC == frozenset({"ripple", "cubism"})


@pytest.mark.parametrize("name", SHIFTS)
def test_same_seed_same_bytes_and_each_image_independent_of_the_batch(name):
    images = _rectangles(8)
    masks = np.random.default_rng(1).integers(0, 5, images.shape[:3]).astype(np.uint8)
    a, ma = apply_shift(name, images, 0.7, seed=3, masks=masks)
    b, mb = apply_shift(name, images, 0.7, seed=3, masks=masks)
    assert a.tobytes() == b.tobytes() and ma.tobytes() == mb.tobytes()
    head, mhead = apply_shift(name, images[:3], 0.7, seed=3, masks=masks[:3])
    assert np.array_equal(head, a[:3]) and np.array_equal(mhead, ma[:3])
    assert not np.shares_memory(a, images) and not np.shares_memory(ma, masks)


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_geometric_shifts_change_with_the_seed(name):
    images = _rectangles(4)
    a, _ = apply_shift(name, images, 0.7, seed=0)
    b, _ = apply_shift(name, images, 0.7, seed=1)
    assert _diff(a, b) > 1.0


@pytest.mark.parametrize("name", SHIFTS)
def test_every_shift_changes_the_image_and_stronger_changes_it_more(name):
    images = _rectangles(6)
    diffs = [_diff(apply_shift(name, images, s, seed=5)[0], images) for s in (0.25, 0.5, 1.0)]
    assert diffs[0] > 2.0, diffs
    assert diffs[0] < diffs[1] < diffs[2], diffs


@pytest.mark.parametrize("name", SHIFTS)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_labels_are_kept(name, channels):
    images = _rectangles(3, 32, 32, channels)
    masks = np.random.default_rng(2).choice(np.array([0, 3, 7, 255], np.int64), images.shape[:3])
    out, out_masks = apply_shift(name, images, 1.0, seed=0, masks=masks)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert out_masks.shape == masks.shape and out_masks.dtype == masks.dtype
    assert set(np.unique(out_masks)) <= {0, 3, 7, 255}
    assert apply_shift(name, images, 1.0, seed=0)[1] is None


def test_photocopy_keeps_masks_and_desaturates():
    images = _rectangles(4)
    masks = np.random.default_rng(3).integers(0, 20, images.shape[:3]).astype(np.uint8)
    out, out_masks = apply_shift("photocopy", images, 1.0, seed=0, masks=masks)
    assert np.array_equal(out_masks, masks) and out_masks is not masks
    colours = np.array([[255, 0, 0], [0, 200, 0], [0, 0, 255], [250, 200, 0]], np.uint8)
    saturated = colours[np.arange(48) // 12][None, None].repeat(32, 1)          # (1, 32, 48, 3) stripes
    grey = apply_shift("photocopy", saturated, 1.0, seed=0)[0]
    spread = lambda x: float((x.max(-1).astype(int) - x.min(-1)).mean())  # noqa: E731
    assert spread(grey) < 0.2 * spread(saturated)
    assert np.array_equal(out, apply_shift("photocopy", images, 1.0, seed=9)[0])  # seed-free


def _label_image(labels: np.ndarray, step: int) -> np.ndarray:
    return (labels.astype(np.int64) * step).astype(np.uint8)[..., None]


def _agreement(out: np.ndarray, masks: np.ndarray, step: int) -> float:
    return float((np.rint(out[..., 0] / step) == masks).mean())


def test_ripple_moves_the_mask_with_the_image():
    y, x = np.mgrid[:64, :64]
    labels = np.stack([x // 8 + y // 8, (63 - x) // 8 + y // 8]).astype(np.uint8)  # neighbours differ by 1
    images = _label_image(labels, 16)
    out, out_masks = apply_shift("ripple", images, 1.0, seed=4, masks=labels)
    assert _agreement(out, out_masks, 16) > 0.9
    assert _agreement(out, labels, 16) < 0.8


def test_cubism_moves_the_mask_with_the_image():
    # labels in {0, 1, 2} on 2x2 blocks: the tile-mean blend (0.8 * 0.25) moves no value by half a step
    rng = np.random.default_rng(0)
    labels = np.kron(rng.integers(0, 3, (2, 32, 32)), np.ones((1, 2, 2), np.int64)).astype(np.int32)
    images = _label_image(labels, 20)
    out, out_masks = apply_shift("cubism", images, 0.25, seed=4, masks=labels)
    assert _agreement(out, out_masks, 20) > 0.9
    assert _agreement(out, labels, 20) < 0.8


def test_bad_input_is_refused():
    images = _rectangles(2)
    with pytest.raises(ValueError, match="unknown shift 'blur'.*photocopy"):
        apply_shift("blur", images, 0.5, seed=0)
    for strength in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"strength.*\(0, 1\]"):
            apply_shift("ripple", images, strength, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        apply_shift("ripple", images.astype(np.float32), 0.5, seed=0)
    with pytest.raises(ValueError, match="masks"):
        apply_shift("cubism", images, 0.5, seed=0, masks=np.zeros((2, 5, 5), np.uint8))


@pytest.mark.parametrize("name", SHIFTS)
def test_the_result_does_not_depend_on_the_block_size(name, monkeypatch):
    from pipeline_lib.domains import shifts

    images = _rectangles(40, 12, 12, 1)
    masks = np.random.default_rng(6).integers(0, 4, images.shape[:3])
    whole, whole_masks = apply_shift(name, images, 0.6, seed=2, masks=masks)
    monkeypatch.setattr(shifts, "_CHUNK", 7)
    blocks, block_masks = apply_shift(name, images, 0.6, seed=2, masks=masks)
    assert np.array_equal(whole, blocks) and np.array_equal(whole_masks, block_masks)
