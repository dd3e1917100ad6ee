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
import shutil
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
_UMASK = os.umask(0)
os.umask(_UMASK)


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
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; artifacts are shared
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


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MANIFEST = "manifest.json"


def write_shards(path: str | Path, images: np.ndarray, labels: np.ndarray, shard_size: int,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Store an image set as a few ``shard-NNNNN.npz`` files plus ``manifest.json`` (count, checksums, meta).

    Large sets (25k translated GTA5 frames) must not become 25k loose files: DVC and Snakemake
    stay fast with a handful of shards.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    with atomic_dir(path) as tmp:
        shards = []
        for i, start in enumerate(range(0, max(len(images), 1), shard_size)):
            name = f"shard-{i:05d}.npz"
            with open(tmp / name, "wb") as fh:
                np.savez(fh, images=images[start:start + shard_size], labels=labels[start:start + shard_size])
            shards.append({"file": name, "count": int(len(images[start:start + shard_size])),
                           "sha256": _sha256(tmp / name)})
        manifest = {"count": int(len(images)), "image_shape": list(images.shape[1:]), "shards": shards, **meta}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_shards(path: str | Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load a sharded image set; with ``verify`` check every shard's checksum and the total count."""
    path = Path(path)
    manifest = read_json(path / MANIFEST)
    images, labels = [], []
    for shard in manifest["shards"]:
        file = path / shard["file"]
        if not file.is_file() or (verify and _sha256(file) != shard["sha256"]):
            raise PipelineError(f"{file}: missing or its checksum differs from {path / MANIFEST}; "
                                "delete the folder and rerun the stage that writes it (or dvc pull)")
        with np.load(file, allow_pickle=False) as z:
            images.append(z["images"])
            labels.append(z["labels"])
    imgs, labs = np.concatenate(images), np.concatenate(labels).astype(np.int64)
    if len(imgs) != manifest["count"]:
        raise PipelineError(f"{path}: holds {len(imgs)} images, its manifest says {manifest['count']}; rerun its stage")
    return imgs, labs, manifest
