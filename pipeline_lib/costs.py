"""The planning command's cost model: device time, GPU memory and disk of one stage job, without running it.

Every figure comes from ``pipeline_lib/plan_costs.yaml`` (which says where each one was measured or how it was
estimated) and from the params the stage reads: a training job's frames are its epochs x steps per epoch x batch
(a step count left null is one pass over the source's training frames), each of ``megapixels`` (its crop, or the
frame scaled to the section's ``max_width``). Its device seconds are those frames' GFLOPs (the nets' forward GFLOPs
per megapixel x their passes per frame) over the reference GPU's sustained rate, or over the frames/s measured on a
GPU where ``measured`` has the rule; the data loader's decode rate (``num_workers`` workers) and, for a translated
set, the disk's write rate bound it from below.
No torch import: the nets' sizes are a table (``tests/test_plan.py`` rebuilds the nets and checks it).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline_lib import paths
from pipeline_lib.config import Params
from pipeline_lib.dag import Stage, param_values
from pipeline_lib.diskspace import translated_set_bytes
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Experiment

COSTS_FILE = Path(__file__).with_name("plan_costs.yaml")
FLOAT_BYTES = 4  # checkpoints hold float32 tensors
INDEX_BYTES_PER_FRAME = 110  # data/domains/<name>.json: two relative paths per frame (measured on stand-ins: ~100)


@functools.cache
def cost_table() -> dict[str, Any]:
    """``plan_costs.yaml``, parsed once."""
    return yaml.safe_load(COSTS_FILE.read_text())


@dataclass(frozen=True)
class Frames:
    """A domain's split sizes and its frames' native size (height, width)."""

    train: int
    test: int
    height: int
    width: int

    def megapixels(self, max_width: int | None) -> float:
        """One frame's megapixels once scaled down to ``max_width`` (None: as stored)."""
        return scaled(self.height, self.width, max_width)[0] * scaled(self.height, self.width, max_width)[1] / 1e6


def scaled(height: int, width: int, max_width: int | None) -> tuple[int, int]:
    """(height, width) of a frame after ``MaxWidth`` (:mod:`pipeline_lib.domains.frames`)."""
    if max_width is None or width <= max_width:
        return height, width
    return max(1, round(height * max_width / width)), max_width


def domain_frames(params: Params, name: str) -> Frames:
    """Split sizes of a segmentation domain: its prepared index where ``prepare`` has run, else the real dataset's
    published size (``datasets`` in the cost table) or the embedded scenes' params; capped by ``prepare.real``."""
    domain = resolve_domain(params, name)
    if domain.task != "segmentation":
        raise PipelineError(f"{name} is a {domain.task} domain: the cost model covers the segmentation track only; "
                            "plan a segmentation experiment (e.g. reports/gta_cityscapes.csv)")
    known = cost_table()["datasets"].get(name)
    index = Path(domain.artifact)
    if index.suffix == ".json" and index.is_file():
        counts = json.loads(index.read_text())["counts"]
        train, test = counts["train"], counts["test"]
    elif known is not None:
        test = known.get("test", getattr(getattr(params.prepare, name, None), "test_frames", 0))
        train = known.get("train", known.get("frames", 0) - test)
    elif name.startswith("scenes"):
        scenes = params.prepare.scenes
        return Frames(scenes.n_train, scenes.n_test, scenes.height, scenes.width)
    else:
        raise PipelineError(f"{name}: frame counts unknown until it is prepared; run `snakemake {index}` first "
                            "(it only indexes and checks the frames)")
    height, width = (known["height"], known["width"]) if known else _first_frame_size(domain.root, index)
    if name in cost_table()["datasets"]:
        cap = params.prepare.real
        train = min(train, cap.max_train) if cap.max_train is not None else train
        test = min(test, cap.max_test) if cap.max_test is not None else test
    return Frames(train, test, height, width)


def _first_frame_size(root: Path | None, index: Path) -> tuple[int, int]:
    """(height, width) of the first indexed frame of a folder domain (PIL reads the header only)."""
    from PIL import Image
    first = json.loads(index.read_text())["splits"]["train"][0][0]
    with Image.open(Path(root or ".") / first) as image:
        return image.height, image.width


@dataclass(frozen=True)
class JobCost:
    """What one job costs: device seconds (on the reference GPU, or CPU for CPU rules), whether the decode rate
    or the nets bound it, peak GPU memory (rough), and the bytes it leaves on disk by kind."""

    seconds: float
    bound: str
    gpu_bytes: int
    disk: dict[str, int]
    how: str


def _section(params: Params, exp: Experiment, name: str) -> dict[str, Any]:
    key = exp.key(name)
    return param_values(params, (key,))[key]


def _model(name: str, arch: str) -> dict[str, Any]:
    return cost_table()["models"][arch if name == "backbone" else name]


def train_frames(section: dict[str, Any], source_train: int) -> tuple[int, str]:
    """Frames one training job passes through its nets, and how they were counted."""
    batch = section.get("batch_size", 1)
    if "max_batches" in section:  # gaussian_match: a fixed number of batches (null: one pass)
        batches = section["max_batches"] or math.ceil(source_train / batch)
        return batches * batch, f"{batches} batches x {batch}"
    epochs = section.get("epochs") or section.get("max_epochs") or 1
    steps = section.get("steps_per_epoch") or section.get("max_steps_per_epoch") or math.ceil(source_train / batch)
    extra = section.get("disc_pretrain_steps", 0) + section.get("batchnorm_batches", 0)
    return (epochs * steps + extra) * batch, f"({epochs} epochs x {steps} steps + {extra}) x batch {batch}"


def job_cost(params: Params, exp: Experiment, stage: Stage, gpus: int, cores: int) -> JobCost:
    """The cost of one job of experiment ``exp`` (see the module docstring) on ``gpus`` reference GPUs, or on
    ``cores`` CPU cores where it asks for none (``resources`` in params.yaml)."""
    table, rule, args = cost_table(), stage.rule, dict(stage.args)
    if rule in ("prepare", "prepare_index"):
        frames = domain_frames(params, args["domain"])
        count = frames.train + frames.test
        seconds = count * frames.megapixels(None) * table["cpu"]["decode_ms_per_mpix"] / 1e3
        return JobCost(seconds / max(1, params.prepare.validate_workers), "decode", 0,
                       {"index": count * INDEX_BYTES_PER_FRAME}, f"{count} frames decoded once")
    recipe = table["rules"].get(rule)
    if recipe is None:
        return JobCost(float(table["fixed_seconds"].get(rule, 60)), "fixed", 0, {}, "fixed estimate")
    arch = params.backbones[args.get("backbone", exp.backbone)].arch
    section = _section(params, exp, recipe["section"])
    source = domain_frames(params, args.get("domain", exp.source))
    target = domain_frames(params, exp.target)
    max_width = section.get("max_width")
    read = source
    if rule in ("evaluate", "select"):
        width, read = section["infer_max_width"], target
        frames = target.test + source.test
        mpix = (target.test * target.megapixels(width) + source.test * source.megapixels(width)) / max(1, frames)
        if rule == "select":
            frames = len(exp.row_seeds(args["method"])) * params.selection.keep * (target.test
                                                                                 + 3 * params.selection.frames)
            mpix = target.megapixels(width)
        how = f"{frames} frames at inference size"
    elif rule == "translate":
        frames, mpix, how = source.train, source.megapixels(max_width), f"{source.train} source frames"
    else:
        frames, how = train_frames(section, source.train)
        crop = section.get("crop")
        mpix = crop[0] * crop[1] / 1e6 if crop else source.megapixels(max_width)
    measured = table["measured"].get(rule) if gpus else None
    if measured is not None and measured.get("arch", "*") not in ("*", arch):
        measured = None  # measured with another net
    gflops = sum(n * _model(m, arch)["gflops_per_mpix"] for m, n in recipe["passes"].items())
    rate = table["reference_gpu"]["tflops"] * 1e3 * gpus if gpus else table["cpu"]["gflops_per_core"] * cores
    compute = frames / (measured["frames_per_s"] * gpus) if measured else frames * mpix * gflops / rate
    workers = max(1, section.get("num_workers") or 1)
    decoded = 0 if rule == "train_task" else frames * recipe.get("domains", 1)  # train_task reads the shards
    decoded -= frames if dict(stage.args).get("variant") == "pixel_feat" else 0  # its source: the shards
    decode = decoded * read.megapixels(None) * table["cpu"]["decode_ms_per_mpix"] / 1e3 / workers
    disk = _disk(params, stage, rule, recipe, arch, source, max_width)
    write = disk.get("translated", 0) / 1e6 / table["cpu"]["write_mb_per_s"]
    bound = "decode" if decode > compute else ("measured" if measured else ("gpu" if gpus else "cpu"))
    bound = "write" if write > max(compute, decode) else bound
    return JobCost(max(compute, decode, write), bound, _gpu_bytes(recipe, arch, section.get("batch_size", 1), mpix)
                   if gpus else 0, disk, how)


def _gpu_bytes(recipe: dict[str, Any], arch: str, batch: int, mpix: float) -> int:
    """Rough peak GPU memory: float32 weights, gradients and two optimiser states of every net it trains
    (passes >= 3), plus every leaf module's float32 output kept for backward, per pass and frame."""
    total = 0.0
    for name, passes in recipe["passes"].items():
        model = _model(name, arch)
        trained = passes >= 3
        total += model["params"] * FLOAT_BYTES * (4 if trained else 1)
        kept = passes / 3 if trained else 0.25  # inference keeps about one layer's output at a time
        total += kept * batch * mpix * 1e6 * model["activations_per_pixel"] * FLOAT_BYTES
    return int(total)


def _disk(params: Params, stage: Stage, rule: str, recipe: dict[str, Any], arch: str,
          source: Frames, max_width: int | None) -> dict[str, int]:
    """Bytes the job leaves: its checkpoint, its checkpoint series (``selection.keep`` files of its first net),
    the translated set."""
    disk: dict[str, int] = {}
    saves = recipe["saves"]
    if saves:
        disk["checkpoints"] = sum(n * _model(m, arch)["params"] * FLOAT_BYTES for m, n in saves.items())
    if any(str(out).endswith(paths.series(Path("x")).suffix) for out in stage.dir_outs):
        first = next(iter(saves))
        disk["checkpoints"] = disk.get("checkpoints", 0) + params.selection.keep * _model(first, arch)[
            "params"] * FLOAT_BYTES
    if rule == "translate":
        height, width = scaled(source.height, source.width, max_width)
        disk["translated"] = translated_set_bytes(source.train, height, width)
    return disk
