"""Translate every source training image with G_S->T into a sharded dataset that keeps the source labels."""

from __future__ import annotations

import argparse

import torch

from pipeline_lib import paths
from pipeline_lib.artifacts import load_checkpoint, write_shards
from pipeline_lib.cli import experiment, params_hash, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.tensors import domain_split
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.methods.cycada import CycleGAN, translate
from pipeline_lib.plots import image_rows
from pipeline_lib.runtime import resolve_device


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    backbone, cfg = params.backbones[exp.backbone], params.cycada.translate
    device = resolve_device(params.device)
    ckpt = load_checkpoint(paths.cyclegan_model(args.experiment, args.seed))
    net = CycleGAN.build(backbone.channels, params.cycada.cyclegan)
    net.load_state_dict(ckpt["state"])
    source, _ = domain_split(paths.domain_npz(exp.source), "train", backbone)
    images, labels = source.tensors
    translated = translate(net.g_st, images, device, cfg.batch_size)
    out = paths.translated_dataset(args.experiment, args.seed)
    manifest = write_shards(out, to_uint8_images(translated), labels.numpy(), cfg.shard_size, {
        "experiment": args.experiment, "seed": args.seed, "source": exp.source, "target": exp.target,
        "params_hash": params_hash(params.cycada.cyclegan.model_dump(), cfg.model_dump(), backbone.model_dump()),
        "cyclegan_code_version": ckpt["meta"]["code_version"], "cyclegan_seconds": ckpt["meta"]["train_seconds"]})
    sample = torch.arange(min(cfg.grid_samples, len(images)))
    reconstructed = translate(net.g_ts, translated[sample], device, cfg.batch_size)
    image_rows([("source", to_uint8_images(images[sample])), ("translated", to_uint8_images(translated[sample])),
                ("reconstructed", to_uint8_images(reconstructed))],
               paths.translation_grid(args.experiment, args.seed),
               f"{args.experiment} seed {args.seed}: {exp.source} -> {exp.target} -> {exp.source}")
    print(f"translated {manifest['count']} images into {len(manifest['shards'])} shard(s) at {out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
