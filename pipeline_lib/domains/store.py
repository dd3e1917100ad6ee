"""Prepared domain files: one uncompressed ``.npz`` per in-memory domain (digits, embedded scenes).

``prepare`` writes them with :func:`save_domain` (atomically, through
:func:`pipeline_lib.artifacts.atomic_path`); every later stage reads them with :func:`load_domain`.
Real segmentation datasets are not copied: ``prepare`` writes a ``.json`` index of their frames
instead (:mod:`pipeline_lib.domains.frames`).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from pipeline_lib.artifacts import atomic_path
from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError

__all__ = ["load_domain", "save_domain"]


def save_domain(path: str | Path, domain: DomainData) -> None:
    """Store a prepared domain as one uncompressed ``.npz`` (fast to load, DVC-friendly)."""
    meta = json.dumps({"name": domain.name, "classes": list(domain.classes)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train_images=domain.train.images, train_labels=domain.train.labels,
                     test_images=domain.test.images, test_labels=domain.test.labels, meta=np.array(meta))


def _labels(labels: np.ndarray) -> np.ndarray:
    """Class labels as int64; segmentation masks keep their compact uint8."""
    return labels.astype(np.int64) if labels.ndim == 1 else labels


def load_domain(path: str | Path) -> DomainData:
    """Read a file written by :func:`save_domain`; a missing or corrupt one is a one-line error naming the fix."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: prepared domain not found; run its prepare stage first")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return DomainData(
                name=meta["name"],
                train=Split(z["train_images"], _labels(z["train_labels"])),
                test=Split(z["test_images"], _labels(z["test_labels"])),
                classes=tuple(meta["classes"]),
            )
    except PipelineError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(
            f"{path}: corrupt prepared domain ({type(err).__name__}); delete it and rerun its prepare stage"
        ) from None
