"""Build one domain offline (or check and index a real one) into ``data/domains/`` + a sample grid.

Digits and the embedded street scenes become ``<name>.npz``; a real segmentation dataset
(GTA5, Cityscapes, SYNTHIA, a user's folder) stays where it is and gets a ``<name>.json``
index of its train/test frames, which later stages stream from disk.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pipeline_lib import paths
from pipeline_lib.artifacts import load_domain, save_domain
from pipeline_lib.cli import require, run_stage, stage_parser
from pipeline_lib.config import EMBEDDED_SCENE_DOMAINS, FrameParams, Params
from pipeline_lib.domains import build_domain, domain_inputs
from pipeline_lib.domains.frames import build_index, domain_classes, frame_transform, open_frames, write_index
from pipeline_lib.domains.segmentation import CITYSCAPES_PALETTE, default_palette
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.plots import colorize, image_rows, sample_grid


def main(args: argparse.Namespace, params: Params) -> None:
    require(args.domain, params.known_domains(), "domain")
    out = paths.domain_artifact(params, args.domain)
    if params.domain_task(args.domain) == "classification" or args.domain in EMBEDDED_SCENE_DOMAINS:
        inputs = {d: load_domain(paths.domain_npz(d)) for d in domain_inputs(args.domain, params)}
        domain = build_domain(args.domain, params, inputs)
        save_domain(out, domain)
        counts = f"{len(domain.train)} train, {len(domain.test)} test, images {domain.train.images.shape[1:]}"
    else:
        write_index(out, index := build_index(params, args.domain))
        counts = f"{index['counts']['train']} train, {index['counts']['test']} test frames (streamed from disk)"
    title = f"{args.domain}: {counts}"
    if params.domain_task(args.domain) == "classification":
        sample_grid(domain.train.images, domain.train.labels, paths.domain_samples_png(args.domain), title)
    else:  # frames over their colour-coded labels
        frames = open_frames(params, args.domain, "train", frame_transform(FrameParams(max_width=512), train=False))
        shown = [frames[i] for i in range(min(6, len(frames)))]
        h = min(image.shape[1] for image, _ in shown)
        palette = default_palette(len(domain_classes(params, args.domain)[0])) \
            if args.domain in params.data.folders else CITYSCAPES_PALETTE
        image_rows([("frames", to_uint8_images(torch.stack([image[:, :h] for image, _ in shown]))),
                    ("labels", colorize(np.stack([mask[:h].numpy() for _, mask in shown]), palette))],
                   paths.domain_samples_png(args.domain), title)
    print(f"prepared {args.domain}: {counts} -> {out}")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--domain", required=True)
    raise SystemExit(run_stage(parser, main))
