"""Disk space: what a translated set takes, what a folder's filesystem has free, and the check before writing.

A translated set (CyCADA's ``translate``) stores every source frame as uint8 channels plus a uint8 train-id mask
(:class:`~pipeline_lib.artifacts.ShardWriter`): frames x H x W x (channels + 1) bytes for segmentation, the GTA5
set at width 1024 about 56 GB. ``translate`` calls :func:`require_free` before its first write, and
``python -m pipeline_lib.plan`` uses the same arithmetic for a whole experiment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline_lib.errors import PipelineError

GB = 1e9
#: kept free beyond an output's size: a filesystem that ends exactly full fails its other writers
MARGIN_FRACTION = 0.05
MARGIN_BYTES = 512 * 2**20


def translated_set_bytes(frames: int, height: int, width: int, channels: int = 3,
                         label_bytes: int | None = None) -> int:
    """Bytes of a translated set of ``frames`` images (uint8, ``channels`` x ``height`` x ``width``) with their labels:
    a uint8 mask per pixel (segmentation, ``label_bytes`` None) or ``label_bytes`` per image (a class id)."""
    labels = height * width if label_bytes is None else label_bytes
    return frames * (channels * height * width + labels)


def free_bytes(path: str | Path) -> int:
    """Free bytes on the filesystem that will hold ``path`` (its nearest existing folder: it may not exist yet)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def with_margin(needed: int) -> int:
    """``needed`` plus what is kept free beside it (:data:`MARGIN_FRACTION`, at least :data:`MARGIN_BYTES`)."""
    return needed + max(int(needed * MARGIN_FRACTION), MARGIN_BYTES)


def require_free(path: str | Path, needed: int, what: str, fix: str) -> None:
    """Raise a one-line :class:`PipelineError` when ``path``'s filesystem cannot hold ``needed`` bytes with the
    margin; ``what`` names the output, ``fix`` says what else the user can do."""
    free = free_bytes(path)
    if free < with_margin(needed):
        raise PipelineError(f"{path}: {what} needs {needed / GB:.1f} GB (+ {(with_margin(needed) - needed) / GB:.1f} "
                            f"GB margin) but its filesystem has {free / GB:.1f} GB free; free space there, or "
                            f"{fix}")
