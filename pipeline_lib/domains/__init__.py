"""Domains: the embedded digit sets built offline, the real ones read through torchvision, street scenes.

:func:`~pipeline_lib.domains.resolve.resolve_domain` says everything about a domain name (kind,
artifact, inputs, classes, ...); ``build_domain(name, params, inputs)`` builds an in-memory domain
as a :class:`DomainData`, which the ``prepare`` stage stores as ``data/domains/<name>.npz``
(:mod:`pipeline_lib.domains.store`). ``mnistm`` and derived domains are built from already prepared
domains (``inputs``), so the DAG records that dependency.

Importing this package is light (numpy and the builders load on first use): the DAG builder imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pipeline_lib.config import Params
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError

if TYPE_CHECKING:
    from pipeline_lib.domains.base import DomainData, Split

__all__ = ["DomainData", "Split", "build_domain", "missing_root"]


def __getattr__(name: str) -> Any:
    """``DomainData`` and ``Split`` load numpy; import them on first use only."""
    if name in ("DomainData", "Split"):
        from pipeline_lib.domains import base
        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cap(split: Split, limit: int | None, seed: int) -> Split:
    """A seeded subset of at most ``limit`` items (in their original order)."""
    import numpy as np

    from pipeline_lib.domains.base import Split

    if limit is None or len(split) <= limit:
        return split
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:limit])
    return Split(split.images[idx], split.labels[idx])


def build_domain(name: str, params: Params, inputs: Mapping[str, DomainData]) -> DomainData:
    """Build the in-memory domain ``name`` (digits, derived, embedded scenes, class folders); ``inputs`` holds the
    prepared domains it is built from. A streamed domain (real scenes, a folder) is indexed instead
    (:func:`pipeline_lib.domains.frames.build_index`)."""
    from pipeline_lib.domains.base import DomainData, Split

    domain, prep = resolve_domain(params, name), params.prepare
    if domain.kind == "shifted":
        from pipeline_lib.domains.shifts import shift_domain
        return shift_domain(name, params.data.shifted[name], inputs[params.data.shifted[name].base])
    if domain.kind == "class_folder":
        from pipeline_lib.domains.class_folders import build_class_folder
        return build_class_folder(name, params.data.folders[name], domain.classes, prep.seed)
    if domain.kind == "derived":
        from pipeline_lib.domains.derived import build_derived
        spec = params.data.derived[name]
        return build_derived(name, spec, inputs[spec.base], prep.seed)
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
    if domain.kind == "real_digits":
        from pipeline_lib.domains import torchvision_digits as tv
        loader = {"mnist": tv.load_mnist, "usps": tv.load_usps, "svhn": tv.load_svhn}[name]
        dom = loader(domain.root, download=params.data.download, cache_dir=params.data.cache_dir)
        cap = prep.real
        return DomainData(dom.name, _cap(dom.train, cap.max_train, prep.seed),
                          _cap(dom.test, cap.max_test, prep.seed), dom.classes)
    if domain.kind == "embedded_scenes":
        from pipeline_lib.domains.scenes import build_scenes
        c = prep.scenes
        style = name.removeprefix("scenes_")
        train_x, train_y, test_x, test_y = build_scenes(style, c.n_train, c.n_test, prep.seed,  # type: ignore[arg-type]
                                                        c.height, c.width)
        return DomainData(name, Split(train_x, train_y), Split(test_x, test_y), domain.classes)
    raise PipelineError(f"{name}: a {domain.kind} domain is streamed from its folder, not built in memory; "
                        f"index it with its prepare stage (python -m stages.prepare --domain {name})")


def missing_root(params: Params, name: str) -> str | None:
    """None while the dataset folder of a real or folder domain exists; else the one line its ``prepare`` would
    stop with (the reader's own: the layout it expects, the params key, the fix). The Snakefile stops with it when
    the DAG first needs that ``prepare``, before any job runs."""
    domain = resolve_domain(params, name)
    if domain.root is None or Path(domain.root).expanduser().is_dir():
        return None
    if domain.kind == "real_digits" and params.data.download:
        return None  # torchvision fetches them into data.cache_dir
    key = f"data.folders.{name}.root" if name in params.data.folders else f"data.roots.{name}"
    try:  # the readers check their root first: this stops there, having read nothing
        if domain.in_memory:
            build_domain(name, params, {})
        else:
            from pipeline_lib.domains.frames import build_index
            build_index(params, name)
    except PipelineError as err:
        return str(err)
    return f"{name}: its dataset folder {domain.root} does not exist; put the data there or point {key} at it"
