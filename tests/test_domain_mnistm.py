"""MNIST-M: |photo crop - digit| blends over scikit-image's bundled colour photos."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.domains.mnistm import build_mnistm, photo_pyramid
from pipeline_lib.domains.optdigits import build_optdigits


@pytest.fixture(scope="module")
def digits():
    return build_optdigits(seed=0)


@pytest.fixture(scope="module")
def mnistm(digits):
    return build_mnistm(digits, seed=0)


def _constant(value: int, n_train: int, n_test: int, side: int) -> DomainData:
    def split(n: int) -> Split:
        return Split(np.full((n, side, side, 1), value, np.uint8), np.arange(n, dtype=np.int64) % 10)

    return DomainData(name="const", train=split(n_train), test=split(n_test))


def test_shapes_labels_and_splits(mnistm, digits):
    assert mnistm.name == "mnistm"
    for out, src in ((mnistm.train, digits.train), (mnistm.test, digits.test)):
        assert out.images.shape == src.images.shape[:3] + (3,)
        assert out.images.dtype == np.uint8
        assert out.labels.dtype == np.int64
        np.testing.assert_array_equal(out.labels, src.labels)
        assert set(np.unique(out.labels).tolist()) == set(range(10))


def test_other_digit_sizes():
    out = build_mnistm(_constant(0, 20, 10, 16), seed=0)
    assert out.train.images.shape == (20, 16, 16, 3)


def test_colour_and_different_from_digits(mnistm, digits):
    images = mnistm.train.images.astype(np.int16)
    chroma = np.abs(images - images.mean(axis=-1, keepdims=True)).mean(axis=(1, 2, 3))
    assert np.median(chroma) > 8  # colour, not grey
    grey_digits = np.repeat(digits.train.images, 3, axis=-1).astype(np.int16)
    assert np.abs(images - grey_digits).mean() > 30


def test_blend_is_absolute_difference():
    # crops depend only on the seed and shapes: |crop - 0| + |crop - 255| == 255
    black = build_mnistm(_constant(0, 30, 10, 28), seed=4)
    white = build_mnistm(_constant(255, 30, 10, 28), seed=4)
    for b, w in ((black.train, white.train), (black.test, white.test)):
        np.testing.assert_array_equal(b.images.astype(np.int16) + w.images, 255)


def test_backgrounds_are_textured_and_varied():
    crops = build_mnistm(_constant(0, 300, 10, 28), seed=1).train.images.astype(np.float64)
    grey_std = (crops @ np.array([0.299, 0.587, 0.114])).reshape(len(crops), -1).std(axis=1)
    assert np.median(grey_std) > 15 and (grey_std > 10).mean() > 0.9
    assert crops.mean(axis=(1, 2)).std(axis=0).min() > 15  # many different photos/places
    assert len(photo_pyramid(28)) >= 5  # most bundled photos load offline


def test_digit_still_visible(mnistm, digits):
    # where the digit is ink the blend moves far from where it is background
    ink = digits.test.images[..., 0] > 200
    bg = digits.test.images[..., 0] < 20
    out = mnistm.test.images.astype(np.float64).mean(axis=-1)
    per_image = [abs(o[i].mean() - o[b].mean()) for o, i, b in zip(out, ink, bg) if i.any() and b.any()]
    assert np.median(per_image) > 40


def test_deterministic_per_seed(mnistm, digits):
    again = build_mnistm(digits, seed=0)
    np.testing.assert_array_equal(again.train.images, mnistm.train.images)
    np.testing.assert_array_equal(again.test.images, mnistm.test.images)
    other = build_mnistm(digits, seed=1)
    assert not np.array_equal(other.train.images, mnistm.train.images)


def test_colour_digits_are_greyed():
    rgb = _constant(255, 10, 10, 28)
    rgb3 = DomainData(
        name="rgb",
        train=Split(np.repeat(rgb.train.images, 3, axis=-1), rgb.train.labels),
        test=Split(np.repeat(rgb.test.images, 3, axis=-1), rgb.test.labels),
    )
    np.testing.assert_array_equal(build_mnistm(rgb3, seed=2).train.images, build_mnistm(rgb, seed=2).train.images)
