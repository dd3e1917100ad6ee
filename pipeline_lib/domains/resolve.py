"""Every fact about a domain, decided in one place: :func:`resolve_domain`.

A domain name from ``params.yaml`` resolves to a :class:`Domain`: its task and kind, the file
``prepare`` writes, the prepared domains it is built from, the project modules that build or read
its files, the params keys ``prepare`` and later stages read for it, its class names, the train ids
that are scored, a colour per class and (real datasets, folders) the folder it is read from.
The DAG, ``prepare``, data loading and the report all ask this module instead of testing names.

Light to import (no torch, torchvision, PIL or numpy): the DAG builder imports it on every
Snakemake parse.

Kinds:

- ``embedded_digits``: mnist5k, syndigits, mnistm, optdigits, built offline into ``data/domains/<name>.npz``;
- ``real_digits``: mnist, usps, svhn, read through torchvision from ``data.roots.<name>`` into an ``.npz``;
- ``derived``: a digit domain with part of some classes' training images removed (``data.derived.<name>``);
- ``shifted``: an in-memory domain (digits, derived, embedded scenes) with every image through one paired shift
  (``data.shifted.<name>``: photocopy, ripple, cubism), image i of each split the shifted image i of its base;
- ``embedded_scenes``: scenes_game, scenes_photo, procedural street scenes in an ``.npz``;
- ``real_scenes``: gta5, cityscapes, synthia, streamed from ``data.roots.<name>`` through a ``.json`` index;
- ``folder``: a user's images + label PNGs (``data.folders.<name>``), streamed through a ``.json`` index;
- ``class_folder``: a user's class-per-folder images (``data.folders.<name>`` with ``layout: classes``), decoded,
  resized and stored in an ``.npz`` by ``prepare`` (:mod:`pipeline_lib.domains.class_folders`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.config import (
    EMBEDDED_DIGIT_DOMAINS,
    EMBEDDED_SCENE_DOMAINS,
    REAL_DIGIT_DOMAINS,
    REAL_SCENE_DOMAINS,
    Params,
    Task,
)
from pipeline_lib.domains.classes import (
    CITYSCAPES_CLASSES,
    DIGIT_CLASSES,
    IGNORE_INDEX,
    SYNTHIA_EVAL_CLASSES,
    Color,
    palette_for,
)
from pipeline_lib.errors import PipelineError

__all__ = ["KINDS", "Domain", "check_compatible", "resolve_domain"]

KINDS = ("embedded_digits", "real_digits", "derived", "shifted", "embedded_scenes", "real_scenes", "folder",
         "class_folder")

#: the module that builds each embedded or real digit set (beyond the shared domains package)
_DIGIT_MODULES = {"mnist5k": "pipeline_lib.domains.mnist5k", "syndigits": "pipeline_lib.domains.syndigits",
                  "mnistm": "pipeline_lib.domains.mnistm", "optdigits": "pipeline_lib.domains.optdigits",
                  "mnist": "pipeline_lib.domains.torchvision_digits", "usps": "pipeline_lib.domains.torchvision_digits",
                  "svhn": "pipeline_lib.domains.torchvision_digits"}
_SEGMENTATION_MODULE = "pipeline_lib.domains.segmentation"
_VALIDATION_MODULE = "pipeline_lib.domains.validation"
_MANIFEST_MODULE = "pipeline_lib.domains.manifest"


@dataclass(frozen=True)
class Domain:
    """One domain, resolved from ``params.yaml`` (see the module docstring for the kinds)."""

    name: str
    task: Task
    kind: str
    #: what ``prepare`` writes: ``data/domains/<name>.npz`` (in-memory domains) or ``.json`` (an index of frames)
    artifact: Path
    #: prepared domains it is built from (mnistm <- prepare.mnistm.digits; a derived domain <- its base)
    inputs: tuple[str, ...]
    #: dotted project modules that build or read this domain's files beyond the shared loading code
    modules: tuple[str, ...]
    #: dotted params keys ``prepare`` reads for it (some may be absent from a user's params.yaml: defaults)
    prepare_keys: tuple[str, ...]
    #: keys a later stage reads to open its frames at run time (streamed domains); () for a self-contained .npz
    stream_keys: tuple[str, ...]
    #: class names in train-id order
    classes: tuple[str, ...]
    #: train ids that are scored (SYNTHIA: its 16; others: all)
    eval_classes: tuple[int, ...]
    #: one (r, g, b) per class
    palette: tuple[Color, ...]
    #: dataset folder of a real or folder domain
    root: Path | None
    #: folder domains: the label-PNG value of each class (train id i <- label_ids[i])
    label_ids: tuple[int, ...] = ()
    #: folder domains: the label-PNG value of unscored pixels
    ignore_id: int = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def streamed(self) -> bool:
        """Frames are read from the dataset folder at run time (through the ``.json`` index)."""
        return self.artifact.suffix == ".json"

    @property
    def in_memory(self) -> bool:
        """The prepared ``.npz`` holds every image (digits, embedded scenes)."""
        return not self.streamed


def _npz(name: str) -> Path:
    return paths.domain_npz(name)


def _index(name: str) -> Path:
    return paths.domain_npz(name).with_suffix(".json")


def _digits(name: str, kind: str, inputs: tuple[str, ...], prepare_keys: tuple[str, ...],
            root: Path | None = None, modules: tuple[str, ...] | None = None) -> Domain:
    return Domain(name=name, task="classification", kind=kind, artifact=_npz(name), inputs=inputs,
                  modules=modules if modules is not None else (_DIGIT_MODULES[name],), prepare_keys=prepare_keys,
                  stream_keys=(), classes=DIGIT_CLASSES, eval_classes=tuple(range(len(DIGIT_CLASSES))),
                  palette=palette_for(DIGIT_CLASSES), root=root)


def _streamed(params: Params, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modules, params keys) that ``prepare`` of a real or folder domain uses beyond its dataset's own: it hashes
    the folder's files (:mod:`pipeline_lib.domains.manifest`) and decodes every frame
    (:mod:`pipeline_lib.domains.validation`, ``prepare.validate_workers`` workers) unless
    ``prepare.validate_frames.<name>`` is false. A per-domain key: trusting one dataset reruns no other's prepare."""
    flag = f"prepare.validate_frames.{name}"
    if params.prepare.validate_frames.get(name, True):
        return (_SEGMENTATION_MODULE, _MANIFEST_MODULE, _VALIDATION_MODULE), (flag, "prepare.validate_workers")
    return (_SEGMENTATION_MODULE, _MANIFEST_MODULE), (flag,)


def resolve_domain(params: Params, name: str) -> Domain:
    """The :class:`Domain` called ``name`` in ``params``; an unknown name is a one-line :class:`PipelineError`."""
    data = params.data
    if name in data.shifted:
        spec = data.shifted[name]
        base = resolve_domain(params, spec.base) if spec.base not in data.shifted else None
        if base is None or base.streamed:
            raise PipelineError(f"data.shifted.{name}.base: {spec.base!r} is not an in-memory domain; shift a digit, "
                                "derived or embedded scenes domain (streamed and shifted domains are not copied)")
        return Domain(name=name, task=base.task, kind="shifted", artifact=_npz(name), inputs=(spec.base,),
                      modules=("pipeline_lib.domains.shifts",), prepare_keys=(f"data.shifted.{name}",),
                      stream_keys=(), classes=base.classes, eval_classes=base.eval_classes, palette=base.palette,
                      root=None)
    if name in data.derived:
        base = data.derived[name].base
        return _digits(name, "derived", (base,), ("prepare.seed", f"data.derived.{name}"),
                       modules=("pipeline_lib.domains.derived",))
    if name in EMBEDDED_DIGIT_DOMAINS:
        inputs = (params.prepare.mnistm.digits,) if name == "mnistm" else ()
        return _digits(name, "embedded_digits", inputs, ("prepare.seed", f"prepare.{name}"))
    if name in REAL_DIGIT_DOMAINS:
        return _digits(name, "real_digits", (), ("prepare.seed", "prepare.real", f"data.roots.{name}",
                                                 "data.download", "data.cache_dir"),
                       root=data.roots.get(name, Path("data/raw") / name))
    if name in EMBEDDED_SCENE_DOMAINS:
        return Domain(name=name, task="segmentation", kind="embedded_scenes", artifact=_npz(name), inputs=(),
                      modules=("pipeline_lib.domains.scenes",), prepare_keys=("prepare.seed", "prepare.scenes"),
                      stream_keys=(), classes=CITYSCAPES_CLASSES, eval_classes=tuple(range(len(CITYSCAPES_CLASSES))),
                      palette=palette_for(CITYSCAPES_CLASSES), root=None)
    if name in REAL_SCENE_DOMAINS:
        root_key = f"data.roots.{name}"
        held_out = (f"prepare.{name}",) if name in ("gta5", "synthia") else ()  # cityscapes: its official splits
        eval_classes = SYNTHIA_EVAL_CLASSES if name == "synthia" else tuple(range(len(CITYSCAPES_CLASSES)))
        modules, checks = _streamed(params, name)
        return Domain(name=name, task="segmentation", kind="real_scenes", artifact=_index(name), inputs=(),
                      modules=modules, prepare_keys=(root_key, *held_out, *checks), stream_keys=(root_key,),
                      classes=CITYSCAPES_CLASSES, eval_classes=eval_classes, palette=palette_for(CITYSCAPES_CLASSES),
                      root=data.roots.get(name, Path("data/raw") / name))
    if name in data.folders and data.folders[name].layout == "classes":
        f, key = data.folders[name], f"data.folders.{name}"
        classes = f.classes if f.classes is not None else folder_classes(f.root, key)
        return Domain(name=name, task="classification", kind="class_folder", artifact=_npz(name), inputs=(),
                      modules=("pipeline_lib.domains.class_folders",), prepare_keys=(key, "prepare.seed"),
                      stream_keys=(), classes=classes, eval_classes=tuple(range(len(classes))),
                      palette=palette_for(classes), root=f.root)
    if name in data.folders:
        f, key = data.folders[name], f"data.folders.{name}"
        assert f.classes is not None  # validated in config for the segmentation layout
        modules, checks = _streamed(params, name)
        return Domain(name=name, task="segmentation", kind="folder", artifact=_index(name), inputs=(),
                      modules=modules, prepare_keys=(key, *checks), stream_keys=(key,), classes=f.classes,
                      eval_classes=tuple(range(len(f.classes))), palette=palette_for(f.classes), root=f.root,
                      label_ids=f.ids if f.ids is not None else tuple(range(len(f.classes))), ignore_id=f.ignore_id)
    raise PipelineError(f"unknown domain {name!r} (known: {', '.join(params.known_domains())}); define your own "
                        "under data.folders (images + labels, or one folder per class), data.derived (digits) or "
                        "data.shifted in params.yaml")


@functools.cache
def folder_classes(root: Path, key: str) -> tuple[str, ...]:
    """The class names of a class-per-folder root: its sub-folder names, sorted (as torchvision's ``find_classes``);
    read once per process (the DAG resolves a domain for every stage that opens it)."""
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        raise PipelineError(f"{key}.root: {root} is not a readable folder; point it at the folder holding one "
                            "sub-folder per class, or list the classes under classes:") from None
    if not names:
        raise PipelineError(f"{key}.root: {root} holds no class folders; lay it out as <root>/<class>/<image>")
    return tuple(names)


def _class_key(domain: Domain) -> str:
    editable = domain.kind in ("folder", "class_folder")
    return f"data.folders.{domain.name}.classes" if editable else f"the classes of {domain.name!r}"


def check_compatible(source: Domain, target: Domain, where: str) -> None:
    """Raise a one-line :class:`PipelineError` if ``source`` and ``target`` name different classes
    (a model trained on one is scored on the other by train id, so both lists must match in order)."""
    s, t = source.classes, target.classes
    if s == t:
        return
    first = next((i for i in range(min(len(s), len(t))) if s[i] != t[i]), min(len(s), len(t)))
    a = repr(s[first]) if first < len(s) else "missing"
    b = repr(t[first]) if first < len(t) else "missing"
    editable = [d for d in (source, target) if d.kind in ("folder", "class_folder")]
    fix = (f"edit {' or '.join(_class_key(d) for d in editable)} (and its ids) so both list the same classes in "
           "the same order" if editable else "pair domains that share one class list")
    raise PipelineError(f"{where}: source {source.name!r} ({len(s)} classes) and target {target.name!r} "
                        f"({len(t)} classes) have different class lists: train id {first} is {a} in "
                        f"{source.name!r} but {b} in {target.name!r}; {fix}")
