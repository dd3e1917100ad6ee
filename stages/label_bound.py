"""GAM section 5.3: the best IoU, pixel and class accuracy a model that follows the source label
distribution can reach on the target, from per-class pixel counts (source train, target test)."""

from __future__ import annotations

import argparse

import torch
from tqdm.auto import tqdm

from pipeline_lib.artifacts import write_json
from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.frames import open_frames
from pipeline_lib.domains.resolve import Domain, resolve_domain
from pipeline_lib.methods.gam_spec import label_bound_json
from pipeline_lib.metrics import IGNORE_INDEX, label_distribution_bound
from pipeline_lib.batches import in_order_batches


def pixel_counts(domain: Domain, split: str, num_classes: int, workers: int) -> torch.Tensor:
    counts = torch.zeros(num_classes, dtype=torch.long)
    frames = open_frames(domain, split, None)
    for _, masks in tqdm(in_order_batches(frames, 16, workers), desc=f"{domain.name} {split} labels", unit="batch"):
        labels = masks.flatten()
        counts += torch.bincount(labels[labels != IGNORE_INDEX].long(), minlength=num_classes)[:num_classes]
    return counts


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    classes, eval_classes = src.classes, src.eval_classes
    workers = params.track(exp.backbone).evaluate.num_workers
    source = pixel_counts(src, "train", len(classes), workers)
    target = pixel_counts(tgt, "test", len(classes), workers)
    bound = label_distribution_bound(source.tolist(), target.tolist(), eval_classes)
    write_json(label_bound_json(args.experiment), {
        "experiment": args.experiment, "source": exp.source, "target": exp.target, "classes": list(classes),
        "eval_classes": list(eval_classes), "source_counts": source.tolist(), "target_counts": target.tolist(),
        **bound})
    print(f"{args.experiment}: label-distribution bound mIoU {100 * bound['miou']:.1f}, pixel acc "
          f"{100 * bound['pixel_acc']:.1f}, class acc {100 * bound['class_acc']:.1f}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True), main))
