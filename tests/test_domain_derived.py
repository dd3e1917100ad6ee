"""Label-skewed digit domains (GAM Table 2): part of some classes' training images removed."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline_lib.config import parse_params
from pipeline_lib.domains import build_domain
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError


def _digits(n_per_class: int) -> DomainData:
    labels = np.repeat(np.arange(10), n_per_class)
    images = np.zeros((len(labels), 8, 8, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(len(labels)) % 256
    return DomainData("base", Split(images, labels), Split(images[:10], labels[:10]), tuple(map(str, range(10))))


def test_half_of_the_odd_digits_are_removed_from_training_only(tiny_raw):
    tiny_raw["data"]["derived"]["odd"] = {"base": "mnist5k", "classes": [1, 3, 5, 7, 9], "keep": 0.5}
    params = parse_params(tiny_raw)
    assert resolve_domain(params, "odd").inputs == ("mnist5k",) and params.domain_task("odd") == "classification"
    base = _digits(40)
    odd = build_domain("odd", params, {"mnist5k": base})
    counts = np.bincount(odd.train.labels, minlength=10)
    assert counts.tolist() == [40, 20] * 5
    assert odd.test is base.test  # the test split is unchanged
    again = build_domain("odd", params, {"mnist5k": base})
    assert np.array_equal(again.train.images, odd.train.images)  # seeded


def test_derived_domains_are_checked(tiny_raw):
    tiny_raw["data"]["derived"]["odd"] = {"base": "gta5", "classes": [1], "keep": 0.5}
    with pytest.raises(PipelineError, match="must be a digit domain"):
        parse_params(tiny_raw)
    del tiny_raw["data"]["derived"]["odd"]
    tiny_raw["data"]["derived"]["mnist"] = {"base": "usps", "classes": [1], "keep": 0.5}
    with pytest.raises(PipelineError, match="clashes with a built-in domain"):
        parse_params(tiny_raw)
