"""Build one domain offline (or check and index a real one) into ``data/domains/`` + a sample grid.

Digits and the embedded street scenes become ``<name>.npz``; a real segmentation dataset
(GTA5, Cityscapes, SYNTHIA, a user's folder) stays where it is and gets a ``<name>.json``
index of its train/test frames, which later stages stream from disk. Every indexed frame is
decoded once first, in ``prepare.validate_workers`` DataLoader workers (unless
``prepare.validate_frames.<name>`` is false): a bad file stops here with one line naming it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pipeline_lib import paths
from pipeline_lib.cli import require, run_stage, stage_parser
from pipeline_lib.config import FrameParams, Params
from pipeline_lib.domains import build_domain
from pipeline_lib.domains.frames import ArrayFrames, frame_transform, indexed_frames, prepare_index, write_index
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.store import load_domain, save_domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.plots import colorize, image_rows, sample_grid


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.domain, params.known_domains(), "domain")
    resolved = resolve_domain(params, args.domain)
    out = resolved.artifact
    # the sample grid is drawn from what is in memory and written first, the artifact last: a failure in between
    # leaves no artifact without its grid (Snakemake and DVC then see the stage as not done)
    preview = frame_transform(FrameParams(max_width=512), train=False)
    if resolved.in_memory:
        inputs = {d: load_domain(resolve_domain(params, d).artifact) for d in resolved.inputs}
        domain = build_domain(args.domain, params, inputs)
        counts = f"{len(domain.train)} train, {len(domain.test)} test, images {domain.train.images.shape[1:]}"
        frames = ArrayFrames(domain.train.images, domain.train.labels, preview) \
            if resolved.task == "segmentation" else None
    else:
        index, check = prepare_index(params, args.domain)
        counts = f"{index['counts']['train']} train, {index['counts']['test']} test frames (streamed from disk)"
        if check is None:
            print(f"{args.domain}: frames not validated (prepare.validate_frames.{args.domain} is false)")
        else:
            print(f"{args.domain}: validated {check.frames} frames in {check.seconds:.1f} s "
                  f"({check.frames_per_second:.1f} frames/s, {check.num_workers} workers)")
        frames = indexed_frames(resolved, index, "train")
        frames.transforms = preview
    title = f"{args.domain}: {counts}"
    if frames is None:
        sample_grid(domain.train.images, domain.train.labels, paths.domain_samples_png(args.domain), title)
    else:  # frames over their colour-coded labels
        shown = [frames[i] for i in range(min(6, len(frames)))]
        h = min(image.shape[1] for image, _ in shown)  # frames of mixed sizes: their common top-left corner
        w = min(image.shape[2] for image, _ in shown)
        image_rows([("frames", to_uint8_images(torch.stack([image[:, :h, :w] for image, _ in shown]))),
                    ("labels", colorize(np.stack([mask[:h, :w].numpy() for _, mask in shown]), resolved.palette))],
                   paths.domain_samples_png(args.domain), title)
    if resolved.in_memory:
        save_domain(out, domain)
    else:
        write_index(out, index)
    print(f"prepared {args.domain}: {counts} -> {out}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--domain", required=True)
    raise SystemExit(run_stage(parser, main))
