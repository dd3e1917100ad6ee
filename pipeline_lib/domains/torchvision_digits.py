"""The real digit sets (MNIST, USPS, SVHN) read through torchvision's dataset classes.

torchvision's on-disk expectations (torchvision 0.29, ``torchvision/datasets``):

* ``MNIST(root)`` reads the *decompressed* IDX files from ``<root>/MNIST/raw/``
  (``mnist.py``: ``raw_folder``, ``_check_exists``). People usually have the four
  ``.gz`` files from http://yann.lecun.com/exdb/mnist/, directly in a folder or in
  ``MNIST/raw``. We find them (``.gz`` or not) in ``<root>`` or ``<root>/MNIST/raw``,
  check the IDX headers (magic 2051 images / 2049 labels, sizes), and when needed
  decompress into ``<cache_dir>/MNIST/raw/``; the user's root is never written to.
* ``USPS(root)`` reads ``<root>/usps.bz2`` / ``usps.t.bz2`` (LIBSVM text, labels 1..10,
  pixels in [-1, 1]); with ``download=False`` it neither verifies md5s nor downloads.
* ``SVHN(root)`` reads ``train_32x32.mat`` / ``test_32x32.mat`` but insists on the
  official md5 first, see :class:`_SVHNNoChecksum`.

Any missing or malformed file becomes a one-line :class:`PipelineError`; downloading
happens only when ``download`` is true, and always into ``cache_dir``.
"""

from __future__ import annotations

import bz2
import gzip
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from pipeline_lib.domains.base import NUM_DIGIT_CLASSES, DomainData, Split
from pipeline_lib.errors import PipelineError

DOWNLOAD_HINT = "or set data.download: true to let torchvision fetch them when online"

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
USPS_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}

# Exceptions that torchvision/scipy/bz2/gzip raise on truncated or malformed files.
_READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, AssertionError, KeyError, TypeError, zlib.error)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _corrupt(path: Path, what: str, detail: str) -> PipelineError:
    return PipelineError(
        f"{path} is not a readable {what} ({detail}); the file is truncated or corrupt: delete it and re-download it"
    )


def _download_failed(dataset: str, key: str, cache: Path, exc: BaseException) -> PipelineError:
    return PipelineError(
        f"could not download {dataset} into {cache} ({_one_line(exc)}); check that this machine is online, "
        f"or download the files yourself and set {key} to their folder"
    )


def _check_root(root: Path | None, dataset: str, key: str, layout: str, download: bool) -> bool:
    """True if ``root`` is an existing folder; raise when it is not and download is off."""
    if root is not None and Path(root).is_dir():
        return True
    if download:
        return False
    where = "is not set" if root is None else f"= {root} is not an existing folder"
    raise PipelineError(
        f"{dataset} data not found: {key} {where}; expected {layout}; set {key} to that folder, {DOWNLOAD_HINT}"
    )


# --------------------------------------------------------------------------- MNIST


def _idx_problem(header: bytes, size: int, magic: int) -> str | None:
    """Why an IDX file with this header and byte size is malformed, or None if it is fine."""
    ndim = magic & 0xFF
    if len(header) < 4 + 4 * ndim:
        return f"only {size} bytes, shorter than an IDX header"
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        return f"IDX magic number {found}, expected {magic}"
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        return f"{size} bytes but its header {dims} needs {expected}"
    return None


def _idx_count(header: bytes) -> int:
    return int.from_bytes(header[4:8], "big")


def _find_mnist_file(root: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``<root>/MNIST/raw`` (preferred) or ``<root>``."""
    for folder in (root / "MNIST" / "raw", root):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _gunzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, "gzip file", _one_line(exc)) from exc


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` via a temporary file + rename (safe for parallel jobs)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _source_stamp(src: Path) -> str:
    st = src.stat()
    return f"{src.resolve()} {st.st_size} {st.st_mtime_ns}"


def _prepare_mnist(sources: dict[str, Path], root: Path, cache_dir: Path) -> Path:
    """Validate the four IDX files and return the folder to hand torchvision as ``root``.

    Decompressed files already in ``<root>/MNIST/raw`` are read in place. Anything else
    is decompressed (or copied) into ``<cache_dir>/MNIST/raw``, once: a ``.source``
    stamp (path, size, mtime of the original) next to each copy marks it up to date.
    Copies are written only after their contents passed the IDX checks.
    """
    in_place = all(path.parent == root / "MNIST" / "raw" and path.suffix != ".gz" for path in sources.values())
    cache_raw = cache_dir / "MNIST" / "raw"
    counts: dict[str, int] = {}
    for name, src in sources.items():
        magic = IDX_IMAGES_MAGIC if "images" in name else IDX_LABELS_MAGIC
        target, stamp_file = cache_raw / name, cache_raw / f"{name}.source"
        if in_place:
            with open(src, "rb") as fh:
                header, size = fh.read(16), src.stat().st_size
        elif target.is_file() and stamp_file.is_file() and stamp_file.read_text() == _source_stamp(src):
            with open(target, "rb") as fh:
                header, size = fh.read(16), target.stat().st_size
        else:
            data = _gunzip(src) if src.suffix == ".gz" else src.read_bytes()
            header, size = data[:16], len(data)
            problem = _idx_problem(header, size, magic)
            if problem is not None:
                raise _corrupt(src, "MNIST IDX file", problem)
            _write_atomic(target, data)
            _write_atomic(stamp_file, _source_stamp(src).encode())
        problem = _idx_problem(header, size, magic)
        if problem is not None:
            raise _corrupt(src, "MNIST IDX file", problem)
        counts[name] = _idx_count(header)
    for images_name, labels_name in MNIST_FILES.values():
        if counts[images_name] != counts[labels_name]:
            raise _corrupt(
                sources[labels_name],
                "MNIST IDX file",
                f"{counts[labels_name]} labels for the {counts[images_name]} images in {sources[images_name].name}",
            )
    return root if in_place else cache_dir


def _mnist_split(torch_root: Path, train: bool, download: bool) -> Split:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(torch_root), train=train, download=download)
    except _READ_ERRORS as exc:
        raise _corrupt(torch_root / "MNIST" / "raw", "MNIST folder", _one_line(exc)) from exc
    images = ds.data.numpy().astype(np.uint8, copy=False)[..., None]
    labels = ds.targets.numpy().astype(np.int64)
    return Split(np.ascontiguousarray(images), labels)


def load_mnist(root: Path | None, download: bool, cache_dir: Path) -> DomainData:
    """MNIST from the standard IDX files (``.gz`` or decompressed) in ``root`` or ``root/MNIST/raw``.

    Decompressed copies go to ``cache_dir/MNIST/raw`` when torchvision cannot read
    ``root`` as is. With ``download`` true and the files absent, torchvision downloads
    them into ``cache_dir``. Returns (N, 28, 28, 1) uint8 splits.
    """
    key = "data.roots.mnist"
    names = [name for pair in MNIST_FILES.values() for name in pair]
    layout = f"{', '.join(n + '.gz' for n in names)} (gzipped or not) in it or in its MNIST/raw subfolder"
    cache_dir = Path(cache_dir)
    sources: dict[str, Path] = {}
    if _check_root(root, "MNIST", key, layout, download):
        assert root is not None
        root = Path(root)
        found = {name: _find_mnist_file(root, name) for name in names}
        missing = [name for name, path in found.items() if path is None]
        if missing and not download:
            raise PipelineError(
                f"MNIST files missing in {root}: {', '.join(m + '[.gz]' for m in missing)}; expected {layout}; "
                f"set {key} to the folder holding them, {DOWNLOAD_HINT}"
            )
        if not missing:
            sources = {name: path for name, path in found.items() if path is not None}

    if sources:
        assert root is not None
        torch_root = _prepare_mnist(sources, root, cache_dir)
        return DomainData(
            name="mnist",
            train=_mnist_split(torch_root, True, download=False),
            test=_mnist_split(torch_root, False, download=False),
        )

    from torchvision.datasets import MNIST

    try:  # torchvision skips files it already has in cache_dir/MNIST/raw
        MNIST(str(cache_dir), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise _download_failed("MNIST", key, cache_dir, exc) from exc
    return DomainData(
        name="mnist",
        train=_mnist_split(cache_dir, True, download=False),
        test=_mnist_split(cache_dir, False, download=False),
    )


# --------------------------------------------------------------------------- USPS


def _find_in(root: Path, filename: str, subfolders: tuple[str, ...]) -> Path | None:
    for folder in (root, *(root / sub for sub in subfolders)):
        if (folder / filename).is_file():
            return folder / filename
    return None


def _usps_split(folder: Path, train: bool, download: bool) -> Split:
    from torchvision.datasets import USPS

    path = folder / USPS_FILES["train" if train else "test"]
    try:
        ds = USPS(str(folder), train=train, download=download)
    except _READ_ERRORS as exc:
        if download and not path.is_file():
            raise _download_failed("USPS", "data.roots.usps", folder, exc) from exc
        raise _corrupt(path, "USPS LIBSVM bz2 file", _one_line(exc)) from exc
    images = np.asarray(ds.data, dtype=np.uint8)
    labels = np.asarray(ds.targets, dtype=np.int64)
    if images.ndim != 3 or images.shape[1:] != (16, 16) or len(labels) == 0:
        raise _corrupt(path, "USPS LIBSVM bz2 file", f"parsed to images of shape {images.shape}")
    if labels.min() < 0 or labels.max() >= NUM_DIGIT_CLASSES:
        raise _corrupt(path, "USPS LIBSVM bz2 file",
                       f"labels outside 1..10 (found {labels.min() + 1}..{labels.max() + 1})")
    return Split(np.ascontiguousarray(images[..., None]), labels)


def _existing_folders(root: Path | None, name: str, files: dict[str, str], key: str, layout: str,
                      subfolders: tuple[str, ...], download: bool) -> dict[str, Path]:
    """Split -> folder holding that split's file under ``root``; empty when they must be downloaded."""
    if not _check_root(root, name, key, layout, download):
        return {}
    assert root is not None
    found = {split: _find_in(Path(root), fname, subfolders) for split, fname in files.items()}
    missing = [files[split] for split, path in found.items() if path is None]
    if missing and not download:
        raise PipelineError(
            f"{name} files missing in {root}: {', '.join(missing)}; expected {layout}; "
            f"set {key} to the folder holding them, {DOWNLOAD_HINT}"
        )
    return {} if missing else {split: path.parent for split, path in found.items() if path is not None}


def load_usps(root: Path | None, download: bool, cache_dir: Path) -> DomainData:
    """USPS from ``usps.bz2`` / ``usps.t.bz2`` in ``root`` (or ``root/USPS``, ``root/usps``): (N, 16, 16, 1) uint8.

    torchvision's ``USPS`` is always built with ``download=False`` on existing files, so
    it never verifies their md5 nor fetches them again.
    """
    key = "data.roots.usps"
    layout = "usps.bz2 and usps.t.bz2 (LIBSVM text, bzip2) in it"
    subfolders = ("USPS", "usps")
    folders = _existing_folders(root, "USPS", USPS_FILES, key, layout, subfolders, download)
    if folders:
        for split, name in USPS_FILES.items():  # fail fast, naming the file, before parsing
            _check_bz2(folders[split] / name)
        return DomainData(
            name="usps",
            train=_usps_split(folders["train"], True, download=False),
            test=_usps_split(folders["test"], False, download=False),
        )
    target = Path(cache_dir) / "USPS"
    target.mkdir(parents=True, exist_ok=True)
    return DomainData(
        name="usps",
        train=_usps_split(target, True, download=True),
        test=_usps_split(target, False, download=True),
    )


def _check_bz2(path: Path) -> None:
    """Decompress ``path`` once (streaming) so a bad bzip2 stream is reported with its name."""
    try:
        with bz2.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError, ValueError) as exc:
        raise _corrupt(path, "bzip2 file", _one_line(exc)) from exc


# --------------------------------------------------------------------------- SVHN


def _svhn_class() -> type:
    from torchvision.datasets import SVHN

    class _SVHNNoChecksum(SVHN):
        """torchvision's SVHN without the md5 check on files that already exist.

        ``SVHN.__init__`` calls ``_check_integrity()``, which compares the file's md5 with
        the official one, and raises "Dataset not found or corrupted" otherwise. A
        re-saved ``.mat`` (different compression, other MATLAB/scipy version) has the same
        arrays but another md5, so we only require the file to exist and then let
        ``scipy.io.loadmat`` and our shape checks judge the contents. Downloads still go
        through the original class and keep their md5 check.
        """

        def _check_integrity(self) -> bool:
            return os.path.isfile(os.path.join(self.root, self.filename))

    return _SVHNNoChecksum


def _svhn_split(folder: Path, split: str, download: bool) -> Split:
    from torchvision.datasets import SVHN

    path = folder / SVHN_FILES[split]
    cls = SVHN if download else _svhn_class()
    try:
        ds = cls(str(folder), split=split, download=download)
    except Exception as exc:  # noqa: BLE001 - scipy.io raises MatReadError and friends
        if download:
            raise _download_failed("SVHN", "data.roots.svhn", folder, exc) from exc
        raise _corrupt(path, "SVHN .mat file", _one_line(exc)) from exc
    data = np.asarray(ds.data)  # (N, 3, 32, 32) after torchvision's transpose
    labels = np.asarray(ds.labels, dtype=np.int64).reshape(-1)  # 10 already mapped to 0
    if data.ndim != 4 or data.shape[1] != 3 or data.dtype != np.uint8 or len(labels) != len(data):
        raise _corrupt(path, "SVHN .mat file", f"X of shape {data.shape} {data.dtype} with {len(labels)} labels")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= NUM_DIGIT_CLASSES:
        raise _corrupt(path, "SVHN .mat file", "labels outside 1..10")
    return Split(np.ascontiguousarray(data.transpose(0, 2, 3, 1)), labels)


def load_svhn(root: Path | None, download: bool, cache_dir: Path) -> DomainData:
    """SVHN cropped digits from ``train_32x32.mat`` / ``test_32x32.mat`` in ``root`` (or ``root/SVHN``):
    (N, 32, 32, 3) uint8."""
    key = "data.roots.svhn"
    layout = "train_32x32.mat and test_32x32.mat (format 2, cropped digits) in it"
    subfolders = ("SVHN", "svhn")
    folders = _existing_folders(root, "SVHN", SVHN_FILES, key, layout, subfolders, download)
    if folders:
        return DomainData(
            name="svhn",
            train=_svhn_split(folders["train"], "train", download=False),
            test=_svhn_split(folders["test"], "test", download=False),
        )
    target = Path(cache_dir) / "SVHN"
    target.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split in SVHN_FILES:
        if (target / SVHN_FILES[split]).is_file():  # fetched earlier: read without md5
            splits[split] = _svhn_split(target, split, download=False)
        else:
            splits[split] = _svhn_split(target, split, download=True)
    return DomainData(name="svhn", train=splits["train"], test=splits["test"])


__all__ = ["load_mnist", "load_usps", "load_svhn"]
