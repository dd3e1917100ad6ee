"""Fingerprints of what a training stage's result depends on (SPEC section 4).

A resumable partial checkpoint (``<out>.partial``, :class:`pipeline_lib.training.Resumable`) records
the fingerprint of the run that wrote it; a rerun resumes it only when its own fingerprint is the
same, else the partial is discarded. The fingerprint covers the input artifacts by content (the
prepared domain files, upstream checkpoints, a translated set's ``manifest.json``, which holds its
shards' checksums) and the values that shape the result (the stage's params sections, the backbone
settings, the seed). File digests are cached per path, inode, modification time and size within a
process, so a big file is hashed once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import torch
from pydantic import BaseModel

from pipeline_lib.artifacts import MANIFEST, file_sha256
from pipeline_lib.config import Params

_digests: dict[tuple[str, int, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's contents (cached while the file's inode, mtime and size stay the same)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if key not in _digests:
        _digests[key] = file_sha256(path)
    return _digests[key]


def input_digest(path: str | Path) -> str:
    """A file's digest; a sharded set's: its manifest's; another directory's: its files' (names and
    contents); ``"missing"`` for a path that does not exist."""
    path = Path(path)
    if path.is_file():
        return file_digest(path)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return file_digest(path / MANIFEST)
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = [[p.relative_to(path).as_posix(), file_digest(p)] for p in files]
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return "missing"


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (Path, torch.device)):
        return str(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def fingerprint(inputs: Iterable[str | Path], **values: Any) -> str:
    """A short hash of ``inputs`` by content (in the order given) and of JSON-able ``values``
    (pydantic models are taken by their values)."""
    record = {"inputs": [[str(p), input_digest(p)] for p in inputs], "values": values}
    blob = json.dumps(record, sort_keys=True, default=_jsonable).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stage_fingerprint(params: Params, backbone: str, device: torch.device, inputs: Iterable[str | Path], /,
                      **values: Any) -> str:
    """A training stage's resume key: its ``inputs`` and ``values`` (its params sections, seed, ...) plus what
    every training stage depends on: the backbone's settings (``backbones.<backbone>`` as a whole), the
    profile, the device it runs on and its CPU threads."""
    run = {"profile": params.profile, "device": str(device), "threads_per_job": params.threads_per_job}
    return fingerprint(inputs, stage=values, backbone_settings=params.backbones[backbone], run=run)
