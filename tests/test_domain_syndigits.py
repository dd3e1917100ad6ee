"""SynDigits: house-number-like digits rendered from matplotlib's fonts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier

from pipeline_lib.domains.syndigits import EXCLUDED_FONTS, build_syndigits, glyph_bank
from pipeline_lib.errors import PipelineError

LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def syn():
    return build_syndigits(n_train=200, n_test=100, seed=0)


def test_shapes_dtypes_and_balance(syn):
    assert syn.name == "syndigits"
    assert syn.train.images.shape == (200, 32, 32, 3)
    assert syn.test.images.shape == (100, 32, 32, 3)
    for split, per_class in ((syn.train, 20), (syn.test, 10)):
        assert split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert np.bincount(split.labels, minlength=10).tolist() == [per_class] * 10
    assert np.any(np.diff(syn.train.labels) != 1)  # shuffled, not 0,1,2,...


def test_uneven_counts_and_size():
    small = build_syndigits(n_train=23, n_test=7, seed=3, size=28)
    assert small.train.images.shape == (23, 28, 28, 3)
    counts = np.bincount(small.train.labels, minlength=10)
    assert counts.max() - counts.min() <= 1
    with pytest.raises(PipelineError, match="n_train"):
        build_syndigits(n_train=0, n_test=5, seed=0)


def test_deterministic_per_seed(syn):
    again = build_syndigits(n_train=200, n_test=100, seed=0)
    np.testing.assert_array_equal(again.train.images, syn.train.images)
    np.testing.assert_array_equal(again.test.images, syn.test.images)
    np.testing.assert_array_equal(again.test.labels, syn.test.labels)
    other = build_syndigits(n_train=200, n_test=100, seed=1)
    assert not np.array_equal(other.train.images, syn.train.images)


def test_no_train_test_duplicates(syn):
    train = {img.tobytes() for img in syn.train.images}
    assert len(train) == 200
    assert not train & {img.tobytes() for img in syn.test.images}


def test_colour_variety_and_contrast(syn):
    images = syn.train.images.astype(np.float64)
    mean_colours = images.mean(axis=(1, 2))  # (N, 3)
    assert mean_colours.std(axis=0).min() > 20  # backgrounds vary in every channel
    chroma = np.abs(images - images.mean(axis=-1, keepdims=True)).mean(axis=(1, 2, 3))
    assert (chroma > 10).mean() > 0.3  # many images are clearly coloured, not grey
    lum = images @ LUMA
    spread = np.percentile(lum.reshape(len(lum), -1), 98, axis=1) - np.percentile(lum.reshape(len(lum), -1), 2, axis=1)
    assert np.percentile(spread, 5) > 35  # ink stands out from the background
    dark_ink = (np.median(lum.reshape(len(lum), -1), axis=1) > lum.reshape(len(lum), -1).mean(axis=1)).mean()
    assert 0.2 < dark_ink < 0.8  # both dark-on-light and light-on-dark


def test_font_bank_has_digits_only_fonts():
    bank = glyph_bank(32)
    names = [name for name, _ in bank]
    assert len(names) >= 15
    assert any(n.startswith("DejaVuSerif") for n in names) and any(n.startswith("STIX") for n in names)
    assert any(n.startswith("cm") for n in names)
    assert not set(names) & EXCLUDED_FONTS
    assert not any("Display" in n or "NonUni" in n or "Siz" in n for n in names)  # no digit glyphs
    for _, glyphs in bank:
        assert len({g.tobytes() for g in glyphs}) == 10
        assert len({g.shape[0] for g in glyphs}) == 1  # shared baseline-aligned height


def _polarity_free_features(images: np.ndarray) -> np.ndarray:
    grey = (images.astype(np.float64) @ LUMA).reshape(len(images), -1)
    dev = grey - np.median(grey, axis=1, keepdims=True)
    sign = np.where(np.mean(dev**3, axis=1, keepdims=True) < 0, -1.0, 1.0)  # ink is the skewed tail
    feats = dev * sign
    return feats / (feats.std(axis=1, keepdims=True) + 1e-6)


def test_labels_match_rendered_digits():
    # a linear classifier learns the labels far above chance; it could not if the
    # label of an image were not the digit drawn in its centre
    data = build_syndigits(n_train=1000, n_test=300, seed=5)
    clf = RidgeClassifier(alpha=100.0).fit(_polarity_free_features(data.train.images), data.train.labels)
    accuracy = clf.score(_polarity_free_features(data.test.images), data.test.labels)
    assert accuracy > 0.35
