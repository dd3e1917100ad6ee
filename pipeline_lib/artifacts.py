"""Artifact I/O: every stage output is written atomically (temp path, then rename).

A killed stage therefore leaves either the previous artifact or none, never a half
file that a later run would accept. Checkpoints hold only tensors and plain values
and are loaded with ``weights_only=True``.

Under torchrun (:mod:`pipeline_lib.distributed`) rank 0 alone writes: the other processes hold the same
weights and the same (averaged) histories, and N writers of one file would race. Their ``atomic_path`` and
``atomic_dir`` blocks write into a private temporary folder that is removed afterwards, so stage code needs
no ``if rank == 0`` of its own; :func:`save_checkpoint` skips even that (checkpoints are large).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from pipeline_lib import distributed
from pipeline_lib.errors import PipelineError

PACKAGE_DIR = Path(__file__).resolve().parent
_UMASK = os.umask(0)
os.umask(_UMASK)

#: ``hook(temp, True)`` when a temporary sibling appears, ``hook(temp, False)`` once it is gone (renamed
#: or removed); :func:`pipeline_lib.cli.run_stage` records the live ones in the stage's lock file, so
#: the next run of a stage that was killed removes what it left (:mod:`pipeline_lib.locks`)
TempHook = Callable[[Path, bool], None]
_temp_hook: TempHook | None = None


def set_temp_hook(hook: TempHook | None) -> TempHook | None:
    """Install ``hook`` (None: none) for the temporary siblings of artifacts; returns the previous one."""
    global _temp_hook
    previous, _temp_hook = _temp_hook, hook
    return previous


def _temp_event(tmp: Path, alive: bool) -> None:
    if _temp_hook is not None:
        _temp_hook(tmp, alive)


def _blame(err: OSError, path: Path, tmp: Path | None = None) -> None:
    """Make an I/O error that hit ``path``'s temporary sibling (or no file at all) name ``path``.

    A full disk surfaces in a ``write`` that names no file, a read-only folder in ``mkstemp`` with a
    random hidden name: the user should see the artifact that could not be written (for a file inside
    a temporary folder, the same file inside ``path``).
    """
    if not isinstance(err.filename, (str, os.PathLike)):
        err.filename, err.filename2 = str(path), None
        return
    hit = Path(os.path.abspath(os.fsdecode(err.filename)))  # mkstemp and mkdtemp name absolute paths
    if hit.parent == Path(os.path.abspath(path.parent)) and hit.name.startswith(f".{path.name}."):
        err.filename, err.filename2 = str(path), None
    elif tmp is not None and hit.is_relative_to(os.path.abspath(tmp)):
        err.filename, err.filename2 = str(path / hit.relative_to(os.path.abspath(tmp))), None


def partial_path(out: Path) -> Path:
    """A training stage's resumable checkpoint beside its final one (``<out>.partial``)."""
    return out.with_name(out.name + ".partial")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.
    Off rank 0, a file in a private temporary folder that is then dropped (see the module docstring)."""
    path = Path(path)
    if not distributed.is_main():
        with tempfile.TemporaryDirectory(prefix="pipeline-rank-") as scratch:
            yield Path(scratch) / path.name
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        _blame(err, path)
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _temp_event(tmp, True)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; artifacts are shared
        os.replace(tmp, path)
    except OSError as err:
        _blame(err, path)
        raise
    finally:
        tmp.unlink(missing_ok=True)
        _temp_event(tmp, False)


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
    """Save ``{"state": ..., "meta": ...}``; ``meta`` must be plain JSON-like values. Rank 0 only."""
    if not distributed.is_main():
        return
    payload = {"state": state, "meta": {**meta, "code_version": code_version()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found; run the stage that trains it first")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, pickle.UnpicklingError,
            struct.error) as err:
        raise PipelineError(f"{path}: unreadable checkpoint ({type(err).__name__}); delete it and rerun its stage") \
            from None
    if not isinstance(payload, dict) or "state" not in payload or "meta" not in payload:
        raise PipelineError(f"{path}: not a pipeline checkpoint; delete it and rerun its stage")
    return payload


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; it replaces ``path`` only if the block succeeds.
    Off rank 0, a private temporary folder that is then dropped (see the module docstring)."""
    path = Path(path)
    if not distributed.is_main():
        with tempfile.TemporaryDirectory(prefix="pipeline-rank-") as scratch:
            yield Path(scratch)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as err:
        _blame(err, path)
        raise
    try:
        _temp_event(tmp, True)
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as err:
        _blame(err, path, tmp)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _temp_event(tmp, False)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MANIFEST = "manifest.json"


class _Aborted(Exception):
    """Thrown into a :class:`ShardWriter`'s ``atomic_dir`` to drop its temporary folder."""


class ShardWriter:
    """Stream an image set into ``shard-NNNNN.{images,labels}.npy`` pairs plus ``manifest.json``.

    Large sets (25k translated GTA5 frames) must not become 25k loose files: DVC and Snakemake
    stay fast with a handful of shards. Each shard is a memory-mapped ``.npy`` filled batch by
    batch, so memory holds one batch however large the shard; the folder appears (atomically)
    only when :meth:`close` succeeds. Readers memory-map the shards too (:class:`ShardReader`).
    Every frame of one set has the same size.
    """

    def __init__(self, path: str | Path, shard_size: int, meta: dict[str, Any]) -> None:
        self.path, self.shard_size, self.meta = Path(path), shard_size, meta
        self._ctx = atomic_dir(self.path)
        self._tmp = self._ctx.__enter__()
        self._open: list[tuple[str, np.ndarray]] = []  # (file, memmap) of the shard being filled
        self._filled = 0
        self.shards: list[dict[str, Any]] = []
        self.count = 0
        self.image_shape: list[int] | None = None
        self._closed = False

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if self.image_shape is None:
            self.image_shape = list(images.shape[1:])
        elif list(images.shape[1:]) != self.image_shape:
            raise ValueError(f"frames of shape {list(images.shape[1:])} after {self.image_shape}: "
                             "a sharded set holds frames of one size")
        start = 0
        while start < len(images):
            if not self._open:
                i = len(self.shards)
                self._open = [(f"shard-{i:05d}.{kind}.npy", np.lib.format.open_memmap(
                    self._tmp / f"shard-{i:05d}.{kind}.npy", mode="w+", dtype=arr.dtype,
                    shape=(self.shard_size, *arr.shape[1:]))) for kind, arr in (("images", images), ("labels", labels))]
            take = min(self.shard_size - self._filled, len(images) - start)
            for (_, mm), arr in zip(self._open, (images, labels)):
                mm[self._filled:self._filled + take] = arr[start:start + take]
            self._filled += take
            start += take
            if self._filled == self.shard_size:
                self._flush()

    def _flush(self) -> None:
        entry: dict[str, Any] = {"count": self._filled}
        for (name, mm), kind in zip(self._open, ("images", "labels")):
            mm.flush()
            if self._filled < self.shard_size:  # the last shard: keep what was written
                kept = np.array(mm[:self._filled])
                del mm
                np.save(self._tmp / name, kept)
            entry[kind] = {"file": name, "sha256": file_sha256(self._tmp / name)}
        self._open, self._filled = [], 0
        self.shards.append(entry)
        self.count += entry["count"]

    def close(self) -> dict[str, Any]:
        if self._open:
            self._flush()
        if not self.shards:  # an empty set still has one (empty) shard pair
            for kind in ("images", "labels"):
                np.save(self._tmp / f"shard-00000.{kind}.npy", np.zeros((0,), np.uint8))
            self.shards.append({"count": 0, **{k: {"file": f"shard-00000.{k}.npy", "sha256": file_sha256(
                self._tmp / f"shard-00000.{k}.npy")} for k in ("images", "labels")}})
        manifest = {"count": self.count, "image_shape": self.image_shape or [], "shards": self.shards, **self.meta}
        (self._tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        self._closed = True
        self._ctx.__exit__(None, None, None)
        return manifest

    def abort(self, exc: BaseException | None = None) -> None:
        """Drop everything written so far (nothing appears at ``path``); ``exc``: the error that stopped it."""
        if not self._closed:
            self._closed = True
            self._open = []
            stop = exc if exc is not None else _Aborted()
            self._ctx.__exit__(type(stop), stop, stop.__traceback__)  # removes the temporary folder

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.abort(exc)  # after close() a no-op; otherwise (an error, no close) nothing is left behind


def write_shards(path: str | Path, images: np.ndarray, labels: np.ndarray, shard_size: int,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Store an in-memory image set as shards (see :class:`ShardWriter`); returns the manifest."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    with ShardWriter(path, shard_size, meta) as writer:
        writer.add(images, labels)
        return writer.close()


class ShardReader:
    """Random access to a sharded set through memory maps; checksums and counts verified on open."""

    def __init__(self, path: str | Path, verify: bool = True) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).is_file():
            raise PipelineError(f"{self.path}: not a sharded dataset (no {MANIFEST}); rerun the stage that writes it "
                                "(or dvc pull)")
        self.manifest = read_json(self.path / MANIFEST)
        self._images, self._labels, starts = [], [], [0]
        for shard in self.manifest["shards"]:
            arrays = []
            for kind in ("images", "labels"):
                file = self.path / shard[kind]["file"]
                if not file.is_file() or (verify and file_sha256(file) != shard[kind]["sha256"]):
                    raise PipelineError(f"{file}: missing or its checksum differs from {self.path / MANIFEST}; "
                                        "delete the folder and rerun the stage that writes it (or dvc pull)")
                arrays.append(np.load(file, mmap_mode="r", allow_pickle=False))
            if len(arrays[0]) != shard["count"] or len(arrays[1]) != shard["count"]:
                raise PipelineError(f"{self.path}: a shard's size differs from its manifest; rerun its stage")
            self._images.append(arrays[0])
            self._labels.append(arrays[1])
            starts.append(starts[-1] + shard["count"])
        self._starts = np.asarray(starts)
        if starts[-1] != self.manifest["count"]:
            raise PipelineError(f"{self.path}: holds {starts[-1]} images, its manifest says "
                                f"{self.manifest['count']}; rerun its stage")

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = int(np.searchsorted(self._starts, index, side="right") - 1)
        offset = index - int(self._starts[shard])
        return self._images[shard][offset], self._labels[shard][offset]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Everything in memory (small sets: the digit track)."""
        return np.concatenate(self._images), np.concatenate(self._labels)


def read_shards(path: str | Path, verify: bool = True) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Load a sharded image set into memory; with ``verify`` check every shard's checksum and the count."""
    reader = ShardReader(path, verify)
    images, labels = reader.arrays()
    return images, labels.astype(np.int64), reader.manifest


def publish_series(out: Path, series: Path) -> Path | None:
    """Move a training run's checkpoint series (:class:`pipeline_lib.training.Series`, staged in
    ``<series>.partial/``), if it kept one, into ``series`` beside its final checkpoint ``out``: each kept epoch
    becomes a checkpoint with the final one's meta (so the row's loader reads it) and its epoch; the last epoch's
    is the final checkpoint itself (after e.g. a precise-BN pass). Rank 0 only."""
    staged = partial_path(series)
    if not distributed.is_main() or not staged.is_dir():
        return None
    final = load_checkpoint(out)
    meta = {k: v for k, v in final["meta"].items() if k != "code_version"}
    kept = sorted(staged.glob("epoch*.pt"))
    with atomic_dir(series) as folder:
        for i, path in enumerate(kept):
            last = i == len(kept) - 1
            ckpt = load_checkpoint(path)
            save_checkpoint(folder / path.name, final["state"] if last else ckpt["state"],
                            {**meta, "epoch": int(ckpt["meta"]["epoch"]), "last": last})
    shutil.rmtree(staged)
    return series
