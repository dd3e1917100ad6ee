"""A content manifest of a raw dataset folder, so that editing, adding or removing a frame reruns its ``prepare``.

A real or folder domain (GTA5, Cityscapes, SYNTHIA, MNIST/USPS/SVHN from ``data.roots``, ``data.folders``) is
read from a folder the pipeline does not write. The two runners notice a change in it each in their own way:

- **DVC** lists the folder itself among ``prepare``'s dependencies (:attr:`pipeline_lib.dag.Stage.raw`):
  ``dvc status`` and ``dvc repro`` hash its files with DVC's own state cache (inode, size and mtime first, a
  file's md5 only where those changed).
- **Snakemake** compares file times only, and a folder's time does not move when a file in it is edited. Its
  ``prepare`` jobs therefore read ``data/manifests/<domain>.json`` (:func:`refresh`), written when Snakemake
  builds the DAG: every file under the folder with its size and content hash. The file is rewritten only when
  that content changes, so a ``touch`` or a copy that keeps the bytes reruns nothing, while an edited, added or
  removed frame makes ``prepare`` and everything after it out of date.

A refresh stats every file and hashes (BLAKE2b) only the files whose size, mtime or inode changed since the last
scan; those three live in a cache under ``.pipeline/manifests/`` (ignored by git and DVC, never a dependency).
A file modified within :data:`RACY_NS` of the scan that recorded it is hashed again next time (git's "racy"
rule: a second edit in the same clock tick keeps size and mtime). ``python bench/bench_manifest.py`` measures the
cost on 25,000 files.

``prepare`` scans the folder too (:func:`pipeline_lib.domains.frames.prepare_index`, through the same cache) and
writes its :attr:`Manifest.digest` into the domain's ``.json`` index: the index changes when the frames' bytes do,
so under both runners the stages that stream frames through it rerun as well. (MNIST, USPS and SVHN become an
``.npz`` of their pixels, which changes with them.) Light to import (no torch): the Snakefile imports it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_lib import paths

#: the per-file (size, mtime, inode) cache of the last scan: workspace state, never an input of a job
CACHE_DIR = Path(".pipeline/manifests")
#: a file whose mtime is this close to the scan that hashed it is hashed again by the next scan
RACY_NS = 2_000_000_000
#: threads hashing changed files (hashlib releases the GIL; the reads overlap)
HASH_THREADS = 8
_CHUNK = 1 << 20
_VERSION = 1


def manifest_path(domain: str) -> Path:
    """``data/manifests/<domain>.json``: the Snakemake input of the domain's ``prepare`` job."""
    return paths.raw_manifest(domain)


def cache_path(domain: str) -> Path:
    return CACHE_DIR / f"{domain}.json"


@dataclass(frozen=True)
class Manifest:
    """Every file under ``root`` (relative POSIX path -> (size, BLAKE2b hex)); ``exists`` is False for a missing
    root (its ``prepare`` then stops with a message naming the expected layout). ``hashed`` counts the files this
    scan read (not part of the content)."""

    root: str
    exists: bool
    files: dict[str, tuple[int, str]]
    hashed: int = field(default=0, compare=False)

    @property
    def digest(self) -> str:
        """One hash of the content (paths, sizes, hashes): what the domain's index records."""
        listing = "".join(f"{rel}\0{size}\0{digest}\n" for rel, (size, digest) in sorted(self.files.items()))
        return hashlib.blake2b(f"{self.exists}\n{listing}".encode(), digest_size=16).hexdigest()

    def head(self) -> dict[str, Any]:
        """The manifest file's first line: root, whether it exists, file count, bytes and :attr:`digest`."""
        return {"root": self.root, "exists": self.exists, "files": len(self.files),
                "bytes": sum(size for size, _ in self.files.values()), "digest": self.digest}

    def text(self) -> str:
        """The manifest file: :meth:`head`, then one line per file. No times: equal bytes, equal text."""
        lines = [f" {json.dumps(rel)}: [{size}, {json.dumps(digest)}]" for rel, (size, digest) in
                 sorted(self.files.items())]
        body = "".join(line + (",\n" if i < len(lines) - 1 else "\n") for i, line in enumerate(lines))
        return json.dumps(self.head())[:-1] + ',\n "entries": {\n' + body + "}}\n"


def hash_file(path: str | Path) -> str:
    """BLAKE2b (16 bytes, hex) of a file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _walk(root: Path) -> dict[str, os.stat_result]:
    """Every regular file under ``root`` (symbolic links followed, each folder once) with its ``stat``."""
    found: dict[str, os.stat_result] = {}
    seen: set[tuple[int, int]] = set()
    todo = [(str(root), "")]
    while todo:
        folder, prefix = todo.pop()
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:  # a link back up the tree
            continue
        seen.add((st.st_dev, st.st_ino))
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    info = entry.stat()  # follows links
                except FileNotFoundError:  # a dangling link, or removed while we walk
                    continue
                if stat.S_ISDIR(info.st_mode):
                    todo.append((entry.path, f"{prefix}{entry.name}/"))
                elif stat.S_ISREG(info.st_mode):
                    found[prefix + entry.name] = info
    return found


def _load_cache(path: Path, root: str) -> tuple[int, dict[str, list[Any]]]:
    """(scan time in ns, relative path -> [size, mtime_ns, inode, hash]) of the last scan of ``root``."""
    try:
        cache = json.loads(path.read_text())
        if cache.get("version") == _VERSION and cache.get("root") == root:
            return int(cache["scanned_ns"]), dict(cache["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no cache, or an unreadable one: hash everything
    return 0, {}


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless the file already holds it; True if written."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def scan(root: str | Path, cache: Path) -> Manifest:
    """The manifest of ``root``: stat every file, hash those the ``cache`` file does not vouch for, update it."""
    root_text = str(root)
    key = os.path.realpath(root)
    if not Path(root).is_dir():
        return Manifest(root_text, False, {})
    started = time.time_ns()
    scanned_ns, known = _load_cache(cache, key)
    stats = _walk(Path(root))
    files: dict[str, tuple[int, str]] = {}
    todo: list[str] = []
    for rel, st in stats.items():
        old = known.get(rel)
        if old is not None and old[:3] == [st.st_size, st.st_mtime_ns, st.st_ino] and \
                st.st_mtime_ns < scanned_ns - RACY_NS:
            files[rel] = (st.st_size, old[3])
        else:
            todo.append(rel)
    if todo:
        with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(todo))) as pool:
            for rel, digest in zip(todo, pool.map(lambda r: hash_file(os.path.join(root, r)), todo)):
                files[rel] = (stats[rel].st_size, digest)
    if todo or set(known) != set(stats):
        record = {rel: [stats[rel].st_size, stats[rel].st_mtime_ns, stats[rel].st_ino, files[rel][1]]
                  for rel in sorted(files)}
        write_if_changed(cache, json.dumps({"version": _VERSION, "root": key, "scanned_ns": started,
                                            "files": record}))
    return Manifest(root_text, True, files, hashed=len(todo))


def content_digest(domain: str, root: str | Path) -> str:
    """The :attr:`Manifest.digest` of ``root`` (relative to the working folder), through the domain's cache; writes
    no manifest (that is Snakemake's input, refreshed by the Snakefile)."""
    return scan(root, cache_path(domain)).digest


def ensure_manifest(domain: str, root: str | Path, workspace: str | Path = ".") -> None:
    """Create ``data/manifests/<domain>.json``, unscanned, if it does not exist (cheap: no file of ``root`` is
    read); :func:`refresh` fills it in when the domain's ``prepare`` is planned."""
    path = Path(workspace) / manifest_path(domain)
    if not path.exists():
        write_if_changed(path, json.dumps({"root": str(root), "scanned": False}) + "\n")


def refresh(domain: str, root: str | Path, workspace: str | Path = ".") -> Manifest:
    """Scan ``root`` and rewrite ``data/manifests/<domain>.json`` (under ``workspace``) if its content changed."""
    base = Path(workspace)
    manifest = scan(root if Path(root).is_absolute() else base / root, base / cache_path(domain))
    manifest = Manifest(str(root), manifest.exists, manifest.files, manifest.hashed)
    path = base / manifest_path(domain)
    if _written_head(path) != manifest.head():  # the head holds the digest: equal heads, equal files
        write_if_changed(path, manifest.text())
    return manifest


def _written_head(path: Path) -> dict[str, Any] | None:
    """The :meth:`Manifest.head` of the manifest file at ``path`` (its first line); None if there is none."""
    try:
        with open(path) as f:
            first = f.readline().rstrip()
        return json.loads(first[:-1] + "}") if first.endswith(",") else None
    except (OSError, ValueError):
        return None
