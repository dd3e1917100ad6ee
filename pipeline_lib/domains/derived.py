"""Label-skewed digit domains (GAM Table 2): a prepared digit domain whose training split keeps only
``keep`` of the images of some classes (``data.derived.<name>``); the test split is unchanged."""

from __future__ import annotations

import numpy as np

from pipeline_lib.config import DerivedDomainParams
from pipeline_lib.domains.base import DomainData, Split


def thin_classes(split: Split, classes: tuple[int, ...], keep: float, seed: int) -> Split:
    """Keep a seeded ``keep`` fraction of the images of ``classes`` (all other images stay)."""
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(split), bool)
    for c in classes:
        idx = np.flatnonzero(split.labels == c)
        drop[rng.permutation(idx)[round(len(idx) * keep):]] = True
    return Split(split.images[~drop], split.labels[~drop])


def build_derived(name: str, spec: DerivedDomainParams, base: DomainData, seed: int) -> DomainData:
    """``base`` with its training split thinned as ``spec`` says (same test split, same classes)."""
    return DomainData(name, thin_classes(base.train, spec.classes, spec.keep, seed), base.test, base.classes)
