"""Translate every source training image with G_S->T into a sharded dataset that keeps the source labels, and
check its content: the frozen source model's metric on the first source frames before and after translation."""

from __future__ import annotations

import argparse

import torch

from pipeline_lib.artifacts import ShardWriter, load_checkpoint, write_json
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.diskspace import require_free, translated_set_bytes
from pipeline_lib.domains.loading import frames_for_translation
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.domains.transforms import to_uint8_images
from pipeline_lib.evaluation import content_check
from pipeline_lib.methods.cycada import CycleGAN, translate, translate_dataset
from pipeline_lib.methods.cycada_spec import content_check_json, cyclegan_model, translated_dataset, translation_grid
from pipeline_lib.models import load_task_model
from pipeline_lib.plots import image_rows
from pipeline_lib.provenance import fingerprint
from pipeline_lib.registry import Experiment
from pipeline_lib.runtime import resolve_device


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src = resolve_domain(params, exp.source)
    backbone, cycada = params.backbones[exp.backbone], params.section("cycada", exp.backbone)
    cfg = cycada.translate
    device = resolve_device(params.device)
    source = frames_for_translation(src, backbone, cfg.max_width)
    out = translated_dataset(args.experiment, args.seed)
    first_image, first_label = source[0]
    channels, height, width = first_image.shape
    segmentation = first_label.dim() > 0
    key = f"{params.track(exp.backbone).prefix}cycada.translate.max_width"
    fix = "point data/translated at a larger disk (a symbolic link)" + (
        f", or lower {key} in params.yaml" if segmentation else "")
    require_free(out, translated_set_bytes(len(source), height, width, channels, None if segmentation else 8),
                 f"the translated set ({len(source)} frames of {width}x{height})", fix)
    ckpt = load_checkpoint(cyclegan_model(args.experiment, args.seed))
    net = CycleGAN.build(backbone.channels, cycada.cyclegan)
    net.load_state_dict(ckpt["state"])
    meta = {"experiment": args.experiment, "seed": args.seed, "source": exp.source, "target": exp.target,
            "params_hash": fingerprint((), cyclegan=cycada.cyclegan, translate=cfg, backbone=backbone),
            "cyclegan_code_version": ckpt["meta"]["code_version"], "cyclegan_seconds": ckpt["meta"]["train_seconds"]}
    sample: list[torch.Tensor] = []  # the first frames, translated, for the grid
    checked: list[tuple[torch.Tensor, torch.Tensor]] = []  # the first frames, translated, for the content check

    def store(images: torch.Tensor, labels: torch.Tensor) -> None:
        writer.add(to_uint8_images(images), labels.numpy().astype("uint8" if labels.dim() > 1 else "int64"))
        if len(sample) < cfg.grid_samples:
            sample.extend(images[: cfg.grid_samples - len(sample)])
        checked.extend(zip(images[: cfg.content_check - len(checked)], labels[: cfg.content_check - len(checked)]))

    frozen, _ = load_task_model(Experiment(params, args.experiment).source_model(args.seed), backbone)
    with ShardWriter(out, cfg.shard_size, meta) as writer:
        translate_dataset(net.g_st, source, device, cfg.batch_size, store, cfg.num_workers)
        check = content_check(frozen, backbone.task, [source[i] for i in range(len(checked))], checked,
                              frozen.num_classes, device, cfg.batch_size, list(src.eval_classes))
        manifest = writer.close()
    write_json(content_check_json(args.experiment, args.seed), {"experiment": args.experiment, "seed": args.seed,
                                                                 **check})
    translated = torch.stack(sample)
    originals = torch.stack([source[i][0] for i in range(len(sample))])
    reconstructed = translate(net.g_ts, translated, device, cfg.batch_size)
    image_rows([("source", to_uint8_images(originals)), ("translated", to_uint8_images(translated)),
                ("reconstructed", to_uint8_images(reconstructed))],
               translation_grid(args.experiment, args.seed),
               f"{args.experiment} seed {args.seed}: {exp.source} -> {exp.target} -> {exp.source}")
    print(f"translated {manifest['count']} images into {len(manifest['shards'])} shard(s) at {out}; content check on "
          f"{check['frames']} frames: the frozen source model's {check['metric']} {100 * check['source']:.1f} -> "
          f"{100 * check['translated']:.1f}%" + (" (FLAGGED: the translation lost over a third)" if check["flagged"]
                                                 else ""))


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
