"""Domains: the embedded digit sets built offline, and the real ones read through torchvision.

``build_domain(name, params, inputs)`` returns a :class:`DomainData`; the ``prepare`` stage
stores it as ``data/domains/<name>.npz``. ``mnistm`` is built from an already prepared
digits domain (``inputs``), so the DAG records that dependency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline_lib.config import DIGIT_DOMAINS, Params
from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError

__all__ = ["DomainData", "Split", "build_domain", "domain_inputs"]


def domain_inputs(name: str, params: Params) -> list[str]:
    """Names of prepared domains that ``name`` is built from."""
    if name in params.data.derived:
        return [params.data.derived[name].base]
    return [params.prepare.mnistm.digits] if name == "mnistm" else []


def thin_classes(split: Split, classes: tuple[int, ...], keep: float, seed: int) -> Split:
    """Keep a seeded ``keep`` fraction of the images of ``classes`` (all other images stay)."""
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(split), bool)
    for c in classes:
        idx = np.flatnonzero(split.labels == c)
        drop[rng.permutation(idx)[round(len(idx) * keep):]] = True
    return Split(split.images[~drop], split.labels[~drop])


def _cap(split: Split, limit: int | None, seed: int) -> Split:
    if limit is None or len(split) <= limit:
        return split
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:limit])
    return Split(split.images[idx], split.labels[idx])


def build_domain(name: str, params: Params, inputs: Mapping[str, DomainData]) -> DomainData:
    prep = params.prepare
    if name in params.data.derived:
        d = params.data.derived[name]
        base = inputs[d.base]
        return DomainData(name, thin_classes(base.train, d.classes, d.keep, prep.seed), base.test, base.classes)
    if name == "mnist5k":
        from pipeline_lib.domains.mnist5k import build_mnist5k
        return build_mnist5k(seed=prep.seed, test_fraction=prep.mnist5k.test_fraction)
    if name == "syndigits":
        from pipeline_lib.domains.syndigits import build_syndigits
        c = prep.syndigits
        return build_syndigits(n_train=c.n_train, n_test=c.n_test, seed=prep.seed, size=c.size)
    if name == "mnistm":
        from pipeline_lib.domains.mnistm import build_mnistm
        return build_mnistm(inputs[prep.mnistm.digits], seed=prep.seed + 1)
    if name == "optdigits":
        from pipeline_lib.domains.optdigits import build_optdigits
        c = prep.optdigits
        return build_optdigits(seed=prep.seed, test_fraction=c.test_fraction, size=c.size)
    if name in ("mnist", "usps", "svhn"):
        from pipeline_lib.domains import torchvision_digits as tv
        root = params.data.roots.get(name, Path("data/raw") / name)
        loader = {"mnist": tv.load_mnist, "usps": tv.load_usps, "svhn": tv.load_svhn}[name]
        dom = loader(root, download=params.data.download, cache_dir=params.data.cache_dir)
        cap = prep.real
        return DomainData(dom.name, _cap(dom.train, cap.max_train, prep.seed),
                          _cap(dom.test, cap.max_test, prep.seed), dom.classes)
    if name in ("scenes_game", "scenes_photo"):
        from pipeline_lib.domains.scenes import build_scenes
        from pipeline_lib.domains.segmentation import CITYSCAPES_CLASSES
        c = prep.scenes
        train_x, train_y, test_x, test_y = build_scenes(name.removeprefix("scenes_"), c.n_train, c.n_test,  # type: ignore[arg-type]
                                                        prep.seed, c.height, c.width)
        return DomainData(name, Split(train_x, train_y), Split(test_x, test_y), CITYSCAPES_CLASSES)
    raise PipelineError(f"unknown domain {name!r}: known domains are {', '.join(DIGIT_DOMAINS)}, scenes_game, "
                        "scenes_photo")
