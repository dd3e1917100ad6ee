"""Artifact I/O: every stage output is written atomically (temp path, then rename).

A killed stage therefore leaves either the previous artifact or none, never a half
file that a later run would accept. Checkpoints hold only tensors and plain values
and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from pipeline_lib.domains.base import DomainData, Split
from pipeline_lib.errors import PipelineError

PACKAGE_DIR = Path(__file__).resolve().parent


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run the stage that produces it first") from None
    except json.JSONDecodeError:
        raise PipelineError(f"{path}: not valid JSON; delete it and rerun the stage that produces it") from None


def code_version() -> str:
    """Short hash of the library's source, recorded in every checkpoint."""
    digest = hashlib.sha256()
    for file in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(file.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def save_checkpoint(path: str | Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Save ``{"state": ..., "meta": ...}``; ``meta`` must be plain JSON-like values."""
    payload = {"state": state, "meta": {**meta, "code_version": code_version()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found; run the stage that trains it first")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, pickle.UnpicklingError) as err:
        raise PipelineError(f"{path}: unreadable checkpoint ({type(err).__name__}); delete it and rerun its stage") from None
    if not isinstance(payload, dict) or "state" not in payload or "meta" not in payload:
        raise PipelineError(f"{path}: not a pipeline checkpoint; delete it and rerun its stage")
    return payload


def save_domain(path: str | Path, domain: DomainData) -> None:
    """Store a prepared domain as one uncompressed ``.npz`` (fast to load, DVC-friendly)."""
    meta = json.dumps({"name": domain.name, "classes": list(domain.classes)})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, train_images=domain.train.images, train_labels=domain.train.labels,
                     test_images=domain.test.images, test_labels=domain.test.labels, meta=np.array(meta))


def load_domain(path: str | Path) -> DomainData:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: prepared domain not found; run its prepare stage first")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return DomainData(
                name=meta["name"],
                train=Split(z["train_images"], z["train_labels"].astype(np.int64)),
                test=Split(z["test_images"], z["test_labels"].astype(np.int64)),
                classes=tuple(meta["classes"]),
            )
    except PipelineError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(
            f"{path}: corrupt prepared domain ({type(err).__name__}); delete it and rerun its prepare stage"
        ) from None
