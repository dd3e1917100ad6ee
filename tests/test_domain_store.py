"""Prepared domain files (``data/domains/<name>.npz``): written and read by pipeline_lib.domains.store."""

import numpy as np
import pytest

from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.domains.store import load_domain, save_domain
from pipeline_lib.errors import PipelineError


def _domain() -> DomainData:
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), rng.integers(0, 10, n))

    return DomainData("toy", split(5), split(3))


def test_domain_round_trip_and_corruption(tmp_path):
    dom = _domain()
    save_domain(tmp_path / "toy.npz", dom)
    back = load_domain(tmp_path / "toy.npz")
    assert back.name == "toy" and back.classes == dom.classes
    np.testing.assert_array_equal(back.train.images, dom.train.images)
    np.testing.assert_array_equal(back.test.labels, dom.test.labels)
    data = (tmp_path / "toy.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="corrupt prepared domain.*prepare"):
        load_domain(tmp_path / "cut.npz")
    with pytest.raises(PipelineError, match="not found.*prepare stage"):
        load_domain(tmp_path / "nope.npz")


def test_split_validates_its_arrays():
    with pytest.raises(PipelineError, match="uint8"):
        Split(np.zeros((2, 8, 8, 1), np.float32), np.zeros(2, np.int64))
    with pytest.raises(PipelineError, match="labels of shape"):
        Split(np.zeros((2, 8, 8, 1), np.uint8), np.zeros(3, np.int64))
