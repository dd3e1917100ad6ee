"""Cost of tracking a dataset folder (:mod:`pipeline_lib.domains.manifest`): seconds to build and refresh the
content manifest of ``--files`` small files, as Snakemake pays it once per run that plans a ``prepare`` of a real
or folder domain (``prepare`` pays it again to stamp its index).

    python bench/bench_manifest.py                       # 25,000 files of 4 KiB
    python bench/bench_manifest.py --files 25000 --size 2000000 --dvc

Writes ``--files`` files (half under ``images/``, half under ``labels/``, random bytes, dated an hour back as a
dataset on disk is) into a temporary folder and prints the seconds (median of ``--repeats``) of:

- cold build: no cache, every file hashed (the page cache is warm: the files were just written; from a cold disk
  this reads the whole dataset once);
- refresh, nothing changed: every file stat'ed, none hashed, no manifest written;
- refresh after 10 edits in place: 10 files hashed, manifest rewritten;
- refresh after touching 10 files: 10 files hashed, the manifest left alone.

``--dvc`` also times ``dvc status`` of a stage whose dependency is the folder, as the DVC side tracks it: cold
(DVC's state database empty: every file hashed) and warm (nothing changed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_lib.domains.manifest import cache_path, manifest_path, refresh  # noqa: E402

HOUR_NS = 3600 * 10**9


def write_files(root: Path, count: int, size: int) -> list[Path]:
    files = []
    for k in range(count):
        sub = root / ("images" if k % 2 == 0 else "labels")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"frame_{k // 2:06d}.png"
        path.write_bytes(os.urandom(size))
        files.append(path)
    past = time.time_ns() - HOUR_NS
    for path in files:
        os.utime(path, ns=(past, past))
    return files


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_manifest(root: Path, work: Path, files: list[Path], repeats: int) -> None:
    def cold():
        (work / cache_path("bench")).unlink(missing_ok=True)
        (work / manifest_path("bench")).unlink(missing_ok=True)
        return refresh("bench", root, work)

    rows = []
    runs = [timed(cold) for _ in range(repeats)]
    rows.append(("cold build (no cache)", runs))
    refresh("bench", root, work)  # the cache of the last cold run is current
    rows.append(("refresh, nothing changed", [timed(lambda: refresh("bench", root, work)) for _ in range(repeats)]))

    # new mtimes an hour back too (a second apart per round), so that no file is "racy" (just written) at the
    # next refresh and each row hashes exactly the files it changed
    past = time.time_ns() - HOUR_NS

    def edit(round_: int):
        for path in files[:10]:
            with open(path, "r+b") as f:
                f.write(round_.to_bytes(4, "little") + b"edit")
            os.utime(path, ns=(past, past + (round_ + 1) * 10**9))
        return refresh("bench", root, work)

    def touch(round_: int):
        for path in files[10:20]:
            os.utime(path, ns=(past, past + (round_ + 1) * 10**9))
        return refresh("bench", root, work)

    rows.append(("refresh after 10 edits in place", [timed(lambda r=r: edit(r)) for r in range(repeats)]))
    rows.append(("refresh after touching 10 files", [timed(lambda r=r: touch(r)) for r in range(repeats)]))
    print(f"{'':34} {'seconds':>8} {'hashed':>7}")
    for name, results in rows:
        seconds = statistics.median(s for s, _ in results)
        hashed = results[-1][1].hashed
        print(f"{name:34} {seconds:8.3f} {hashed:7d}")
    print(f"manifest file: {(work / manifest_path('bench')).stat().st_size / 1e6:.1f} MB, "
          f"cache: {(work / cache_path('bench')).stat().st_size / 1e6:.1f} MB")


def bench_dvc(root: Path, work: Path) -> None:
    repo = work / "dvcrepo"
    repo.mkdir()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def sh(*cmd: str) -> float:
        start = time.perf_counter()
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    (repo / "dvc.yaml").write_text(f"stages:\n  prepare:\n    cmd: echo done > out.txt\n    deps: [{root}]\n"
                                   "    outs: [out.txt]\n")
    (repo / "out.txt").write_text("done\n")
    first = sh("dvc", "commit", "--force", "-q")  # hashes the folder (state database empty)
    warm = statistics.median(sh("dvc", "status", "-q") for _ in range(3))
    print(f"dvc commit, cold (every file hashed) {first:8.3f}")
    print(f"dvc status, nothing changed         {warm:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=25000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dvc", action="store_true", help="also time DVC's own tracking of the folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    try:
        root = work / "dataset"
        seconds, files = timed(lambda: write_files(root, args.files, args.size))
        print(f"{args.files} files of {args.size} bytes written in {seconds:.1f} s ({work})")
        bench_manifest(root, work, files, args.repeats)
        if args.dvc:
            bench_dvc(root, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
