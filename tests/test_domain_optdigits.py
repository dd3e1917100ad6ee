"""Optdigits: scikit-learn's 8x8 digits, upsampled bilinearly to 0..255 grey."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from pipeline_lib.domains.base import bilinear_matrix
from pipeline_lib.domains.optdigits import build_optdigits
from pipeline_lib.errors import PipelineError


@pytest.fixture(scope="module")
def optdigits():
    return build_optdigits(seed=0)


def test_shapes_dtypes_and_range(optdigits):
    assert optdigits.name == "optdigits"
    assert len(optdigits.train) + len(optdigits.test) == 1797
    for split in (optdigits.train, optdigits.test):
        assert split.images.shape[1:] == (28, 28, 1)
        assert split.images.dtype == np.uint8
        assert split.labels.dtype == np.int64
        assert set(np.unique(split.labels).tolist()) == set(range(10))
    # 0..16 counts mapped to the full 0..255 range, not left at 0..16
    assert optdigits.train.images.min() == 0 and optdigits.train.images.max() == 255
    assert optdigits.train.images.mean() > 40


def test_size_parameter():
    small = build_optdigits(seed=0, size=16)
    assert small.train.images.shape[1:] == (16, 16, 1)
    with pytest.raises(PipelineError, match="size"):
        build_optdigits(seed=0, size=4)


def test_stratified_split(optdigits):
    counts = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(optdigits.test.labels, minlength=10)
    assert test_counts.tolist() == [round(c * 0.2) for c in counts]
    assert (np.bincount(optdigits.train.labels, minlength=10) + test_counts).tolist() == counts.tolist()


def test_no_train_test_overlap(optdigits):
    # load_digits holds no duplicate images, so any shared image means a shared index
    train = {img.tobytes() for img in optdigits.train.images}
    assert not train & {img.tobytes() for img in optdigits.test.images}


def test_deterministic_per_seed(optdigits):
    again = build_optdigits(seed=0)
    np.testing.assert_array_equal(again.train.images, optdigits.train.images)
    np.testing.assert_array_equal(again.test.labels, optdigits.test.labels)
    other = build_optdigits(seed=1)
    assert not np.array_equal(other.train.labels, optdigits.train.labels)


def test_upsampling_is_bilinear_like_torch():
    small = load_digits().images[:50]
    mat = bilinear_matrix(8, 28)
    ours = np.einsum("ij,njk,lk->nil", mat, small, mat)
    ref = torch.nn.functional.interpolate(
        torch.tensor(small)[:, None], size=(28, 28), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_every_image_is_its_source_digit_upsampled(optdigits):
    # reference: torch's bilinear resize of each 8x8 source, scaled 16 -> 255; every image
    # must be one of them (up to rounding) and carry that source's label
    source = load_digits()
    ref = torch.nn.functional.interpolate(
        torch.tensor(source.images)[:, None], size=(28, 28), mode="bilinear", align_corners=False
    )[:, 0].numpy().reshape(len(source.images), -1) * (255 / 16)
    for split in (optdigits.train, optdigits.test):
        flat = split.images.reshape(len(split), -1).astype(np.float64)
        dist = (flat**2).sum(1)[:, None] + (ref**2).sum(1)[None] - 2 * flat @ ref.T
        nearest = dist.argmin(axis=1)
        assert np.abs(flat - ref[nearest]).max() <= 0.5 + 1e-6
        np.testing.assert_array_equal(source.target[nearest], split.labels)
