"""What every domain produces: labelled train/test splits as uint8 arrays.

Digit domains are small enough to live in memory. A prepared domain is stored as one
``.npz`` artifact (see :mod:`pipeline_lib.artifacts`) holding these arrays at their
native resolution and channel count; models convert on load (:mod:`pipeline_lib.domains.transforms`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline_lib.errors import PipelineError

NUM_DIGIT_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """One split of a labelled image domain.

    images: uint8, shape (N, H, W, C) with C in {1, 3}; labels: int64 class indices, shape (N,),
    or (segmentation) uint8 train-id masks of shape (N, H, W).
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] not in (1, 3):
            raise PipelineError(
                f"domain split images must be uint8 (N, H, W, 1|3), got {self.images.dtype} {self.images.shape}"
            )
        mask_shape = self.images.shape[:3]
        if not (self.labels.ndim == 1 or self.labels.shape == mask_shape) or len(self.labels) != len(self.images):
            raise PipelineError(
                f"domain split has {len(self.images)} images but labels of shape {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DomainData:
    """Train and test splits of one domain plus its class names."""

    name: str
    train: Split
    test: Split
    classes: tuple[str, ...] = tuple(str(i) for i in range(NUM_DIGIT_CLASSES))


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled, stratified train/test index arrays for ``labels``.

    Each class contributes ``round(count * test_fraction)`` items to test (at least one
    to each split); both index arrays come back in a seeded random order.
    """
    if not 0.0 < test_fraction < 1.0:
        raise PipelineError(
            f"test_fraction must lie strictly between 0 and 1, got {test_fraction}; set it to e.g. 0.2"
        )
    rng = np.random.default_rng(seed)
    train_parts: list[np.ndarray] = []
    test_parts: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if len(idx) < 2:
            raise PipelineError(
                f"class {cls} has {len(idx)} example(s), too few to split; use a data set with at least 2 per class"
            )
        n_test = min(max(int(round(len(idx) * test_fraction)), 1), len(idx) - 1)
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train_parts))
    test_idx = rng.permutation(np.concatenate(test_parts))
    return train_idx, test_idx


def held_out_by_name(names: Sequence[tuple[str, ...]], stems: Sequence[str] | None, glob: str | None, domain: str,
                     key: str, noun: str, where: Path | str) -> tuple[np.ndarray, str] | None:
    """A folder domain's ``test_stems`` or ``test_glob`` rule: which items it holds out, and the rule's name; None
    when neither is given (the caller applies ``test_fraction``). ``names`` lists the names each item answers to
    (its stem; class folders also ``<class>/<stem>``). A stem or glob that matches nothing is a one-line error."""
    also = " or <class>/<stem>" if any(len(n) > 1 for n in names) else ""
    if stems is not None:
        wanted = set(stems)
        unknown = sorted(wanted - {n for item in names for n in item})
        if unknown:
            raise PipelineError(f"{domain}: {key}.test_stems names {len(unknown)} stem(s) with no {noun} in {where} "
                                f"(e.g. {unknown[0]!r}); list file names without their extension, as they are in "
                                f"that folder{also}")
        return np.array([not wanted.isdisjoint(item) for item in names], bool), f"{key}.test_stems"
    if glob is not None:
        rule = f"{key}.test_glob {glob!r}"
        mask = np.array([any(fnmatch.fnmatchcase(n, glob) for n in item) for item in names], bool)
        if not mask.any():
            raise PipelineError(f"{domain}: {rule} matches no {noun} in {where} (e.g. {names[0][-1]!r}); fix the "
                                f"pattern, which is matched against file stems{also} (e.g. 'seq07_*')")
        return mask, rule
    return None


def check_held_out(mask: np.ndarray, rule: str, domain: str, noun: str) -> None:
    """A split rule must leave something to train on."""
    if mask.all():
        raise PipelineError(f"{domain}: {rule} holds out all {len(mask)} {noun}s, leaving none to train on; hold out "
                            f"fewer {noun}s")


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) matrix that resamples a 1-D signal bilinearly.

    Output pixel ``i`` samples input coordinate ``(i + 0.5) * in/out - 0.5``, clamped to
    the edges, so a 2-D resize is ``A @ image @ A.T``.
    """
    pos = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
    pos = np.clip(pos, 0.0, in_size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = pos - lo
    mat = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(mat, (rows, lo), 1.0 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat
