"""Cost of ``prepare``'s frame check (frames/s): every image and label decoded by the dataset readers.

    python bench/bench_validate.py                        # 500 frames of 512x256, 0 and 2 workers
    python bench/bench_validate.py --frames 2000 --width 1024 --height 512 --workers 0 2 4

Writes a folder domain into a temporary folder: ``--distinct`` street scenes from the embedded renderer
(photo style; PNG images and label PNGs of Cityscapes train ids), repeated under new names up to
``--frames`` (decoding cost does not depend on a frame being unique). Then it times
:func:`pipeline_lib.domains.validation.check_frames` over the whole index (both splits), once per
worker count, as ``prepare`` runs it (``prepare.validate_workers``), and prints frames/s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
import yaml
from PIL import Image

from pipeline_lib.config import parse_params
from pipeline_lib.domains.classes import CITYSCAPES_CLASSES
from pipeline_lib.domains.frames import build_index
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.scenes import build_scenes
from pipeline_lib.domains.validation import check_frames

ROOT = Path(__file__).resolve().parents[1]


def write_frames(root: Path, frames: int, distinct: int, height: int, width: int) -> int:
    """``frames`` image/label PNG pairs under ``root``; returns the bytes written."""
    images, masks, _, _ = build_scenes("photo", distinct, 1, seed=0, height=height, width=width)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for k in range(distinct):
        Image.fromarray(images[k]).save(root / "images" / f"{k:05d}.png")
        Image.fromarray(masks[k]).save(root / "labels" / f"{k:05d}.png")
    for k in range(distinct, frames):
        for sub in ("images", "labels"):
            shutil.copyfile(root / sub / f"{k % distinct:05d}.png", root / sub / f"{k:05d}.png")
    return sum(p.stat().st_size for p in root.rglob("*.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--distinct", type=int, default=25, help="scenes rendered (then repeated)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)  # as a pipeline stage runs (threads_per_job: 1)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        start = time.perf_counter()
        size = write_frames(root, args.frames, min(args.distinct, args.frames), args.height, args.width)
        print(f"{args.frames} frames of {args.width}x{args.height} ({size / 2**20:.0f} MiB of PNG) written in "
              f"{time.perf_counter() - start:.1f} s to {root}", flush=True)
        raw["data"]["folders"] = {"bench": {"root": str(root), "classes": list(CITYSCAPES_CLASSES)}}
        params = parse_params(raw)
        domain, index = resolve_domain(params, "bench"), build_index(params, "bench")
        for workers in args.workers:
            check = check_frames(domain, index, workers, progress=False)
            print(f"validate, {workers} worker(s){'':<10} {check.frames_per_second:8.1f} frames/s  "
                  f"({check.frames} frames in {check.seconds:.2f} s)", flush=True)


if __name__ == "__main__":
    main()
