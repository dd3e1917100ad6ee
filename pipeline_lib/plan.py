"""Plan an experiment's report before running it: jobs per rule, GPU- and CPU-hours, GPU memory, disk, free disk.

    python -m pipeline_lib.plan reports/gta_cityscapes.csv                  # params.yaml's profile
    python -m pipeline_lib.plan reports/gta_cityscapes.csv --profile paper --rows source_only,cycada_feat --seeds 0
    make plan TARGET=reports/gta_cityscapes.csv PLAN_ARGS="--profile paper"

It builds the experiment's stage list with :func:`pipeline_lib.dag.build_stages` (what Snakemake and DVC run),
under the profile, rows and seeds given (default: params.yaml's), and costs each job with the cost model of
:mod:`pipeline_lib.costs` (``plan_costs.yaml``: every figure's source). A rule is a GPU rule where params.yaml's
``resources`` gives it GPUs under that profile. Jobs whose outputs all exist are counted as done (Snakemake may
still rerun them after a change). ``--papers`` adds the papers' numbers for the experiment's rows. Nothing runs and
torch is not imported.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_lib.config import REAL_SCENE_DOMAINS, Params, load_params, parse_params
from pipeline_lib.costs import JobCost, cost_table, job_cost
from pipeline_lib.dag import Stage, build_stages
from pipeline_lib.diskspace import GB, free_bytes, with_margin
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Experiment, paper_values, rows

DISK_KINDS = ("checkpoints", "translated", "index")
#: a digits job: the cost model covers the segmentation track (digit jobs take minutes on a CPU)
UNCOSTED = JobCost(0.0, "n/a", 0, {}, "not costed (digits)")


def experiment_of(target: str, params: Params) -> str:
    """The experiment a target names (``reports/<name>.csv`` or the bare name); a one-line error otherwise."""
    name = Path(target).name.removesuffix(".csv")
    if name not in params.experiments or Path(target).suffix not in ("", ".csv"):
        raise PipelineError(f"{target}: not the report of an experiment in params.yaml; ask for reports/<name>.csv "
                            f"with one of: {', '.join(params.experiments)}")
    return name


def planned_params(path: str, experiment: str | None, target: str, profile: str | None,
                   rows_: list[str] | None, seeds: list[int] | None) -> tuple[Params, str]:
    """params.yaml with the profile, and the experiment's rows and seeds, replaced where given."""
    params = load_params(path)
    name = experiment or experiment_of(target, params)
    raw: dict[str, Any] = copy.deepcopy(params.raw or {})
    if profile:
        raw["profile"] = profile
    if rows_:
        raw["experiments"][name]["methods"] = rows_
    if seeds is not None:
        raw["experiments"][name]["seeds"] = seeds
    return parse_params(raw, path), name


@dataclass
class RuleTotal:
    """One rule's jobs and their summed cost."""

    rule: str
    gpus: int
    jobs: int = 0
    done: int = 0
    seconds: float = 0.0
    per_job: float = 0.0
    gpu_bytes: int = 0
    disk: dict[str, int] = field(default_factory=dict)
    bounds: set[str] = field(default_factory=set)
    how: str = ""

    def add(self, cost: JobCost, done: bool) -> None:
        self.jobs += 1
        self.per_job = max(self.per_job, cost.seconds)
        self.gpu_bytes = max(self.gpu_bytes, cost.gpu_bytes)
        self.bounds.add(cost.bound)
        self.how = self.how or cost.how
        if done:
            self.done += 1
            return
        self.seconds += cost.seconds
        for kind, size in cost.disk.items():
            self.disk[kind] = self.disk.get(kind, 0) + size


def _done(stage: Stage) -> bool:
    return all(Path(out).exists() for out in stage.outs)


def plan(params: Params, experiment: str) -> list[RuleTotal]:
    """Every rule of the experiment's DAG with its jobs' summed cost, in DAG order."""
    exp = Experiment(params, experiment)
    totals: dict[str, RuleTotal] = {}
    for stage in build_stages(params, (experiment,)):
        res = params.resources.for_rule(stage.rule, params.threads_per_job)
        total = totals.setdefault(stage.rule, RuleTotal(stage.rule, res.gpu))
        cost = job_cost(params, exp, stage, res.gpu, res.cpus_per_task or 1) if exp.task == "segmentation" else \
            UNCOSTED
        total.add(cost, _done(stage))
    return list(totals.values())


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f}" if seconds < 36000 else f"{seconds / 3600:.0f}"


def _gb(size: int) -> str:
    return f"{size / GB:.1f}" if size else ""


def render(params: Params, experiment: str, totals: list[RuleTotal], free: int) -> str:
    """The plan as text: a warning where needed, the table per rule, the totals and the disk verdict."""
    exp = Experiment(params, experiment)
    table = cost_table()
    lines = [f"PROFILE: {params.profile}   experiment: {experiment} ({exp.source} -> {exp.target}, backbone "
             f"{exp.backbone} = {exp.arch})", f"rows ({len(exp.rows)}): {' '.join(exp.rows)}",
             f"seeds: {' '.join(map(str, exp.seeds))}"]
    real = {exp.source, exp.target} & set(REAL_SCENE_DOMAINS)
    if real and params.profile != "paper":
        lines.append(f"WARNING: {', '.join(sorted(real))} under the {params.profile!r} profile trains "
                     f"{params.profile}-sized nets, not the papers'; set `profile: paper` in params.yaml (or plan "
                     "with --profile paper)")
    if params.profile != "paper":
        lines.append(f"note: the {params.profile} profile's CycleGAN, calibrator and I2IAdapt nets are costed at the "
                     "paper's sizes (plan_costs.yaml models): their hours are upper bounds")
    gpu_rules = [t for t in totals if t.gpus]
    lines.append(f"device hours: GPU rules on {table['reference_gpu']['name']} ({table['reference_gpu']['tflops']} "
                 f"TFLOP/s sustained, {'measured' if table['measured'] else 'estimated'}; pipeline_lib/plan_costs.yaml)"
                 f", CPU rules on {params.threads_per_job} core(s) per job")
    header = ("rule", "device", "jobs", "done", "h/job", "hours", "bound", "GPU mem GB", "disk GB", "work per job")
    body = [(t.rule, f"{t.gpus} GPU" if t.gpus else "CPU", str(t.jobs), str(t.done or ""), _hours(t.per_job),
             _hours(t.seconds), "/".join(sorted(t.bounds)), _gb(t.gpu_bytes), _gb(sum(t.disk.values())), t.how)
            for t in totals]
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    for r in (header, tuple("-" * w for w in widths), *body):
        lines.append("  ".join(c.ljust(w) if i in (0, 1, 6, 9) else c.rjust(w) for i, (c, w) in
                               enumerate(zip(r, widths))).rstrip())
    gpu_h = sum(t.seconds * t.gpus for t in gpu_rules) / 3600
    cpu_h = sum(t.seconds for t in totals if not t.gpus) / 3600
    disk = {k: sum(t.disk.get(k, 0) for t in totals) for k in DISK_KINDS}
    needed = sum(disk.values())
    lines += [f"total: {sum(t.jobs - t.done for t in totals)} jobs to run; {gpu_h:.1f} GPU-hours, {cpu_h:.1f} "
              f"CPU-hours; on one GPU at least {gpu_h / 24:.1f} days (GPU jobs one at a time: snakemake "
              "--resources gpu=1)" if gpu_rules else
              f"total: {sum(t.jobs - t.done for t in totals)} jobs to run; {cpu_h:.1f} CPU-hours (no rule asks for "
              "a GPU under this profile)",
              "disk: " + ", ".join(f"{k} {disk[k] / GB:.1f} GB" for k in DISK_KINDS) + f"; total {needed / GB:.1f} GB"]
    verdict = "OK" if free >= with_margin(needed) else "NOT ENOUGH"
    lines.append(f"free disk here: {free / GB:.1f} GB -> {verdict} (needs {with_margin(needed) / GB:.1f} GB with "
                 "the margin)" + ("" if verdict == "OK" else "; free space, put data/translated and models/ on a "
                                  "larger disk, or plan fewer rows/seeds"))
    return "\n".join(lines)


def papers(params: Params, experiment: str) -> str:
    """The papers' numbers for the experiment's rows (those reported for its domains and backbone)."""
    exp = Experiment(params, experiment)
    lines = [f"papers' numbers for {experiment} ({exp.arch}):", "| row | paper | source |", "|---|---|---|"]
    for name in exp.rows:
        for value in paper_values(name, exp.source, exp.target, exp.arch):
            lines.append(f"| {name} ({rows()[name].label}) | {value.value} | {value.table} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="reports/<experiment>.csv")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", help="plan under this profile (default: params.yaml's)")
    parser.add_argument("--rows", help="comma-separated report rows (default: the experiment's)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the experiment's)")
    parser.add_argument("--papers", action="store_true", help="also print the papers' numbers for the rows")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
        params, name = planned_params(args.params, None, args.target, args.profile,
                                      args.rows.split(",") if args.rows else None, seeds)
        print(render(params, name, plan(params, name), free_bytes(Path.cwd())))
        if args.papers:
            print(papers(params, name))
    except (PipelineError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
