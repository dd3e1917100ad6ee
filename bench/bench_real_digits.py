"""The real-digits profile on real MNIST <-> USPS: every row beside the paper's, and the wall time per stage.

    python bench/bench_real_digits.py                                # both pairs, seed 0, 2 cores
    python bench/bench_real_digits.py --experiments mnist_usps --seeds 0 1 2 --cores 1
    python bench/bench_real_digits.py --profile demo --workdir /tmp/digits-demo   # any profile
    python bench/bench_real_digits.py --data-root ~/datasets                     # its mnist/ and usps/

Needs real MNIST and USPS: ``--data-root DIR`` (a folder holding ``mnist/`` and ``usps/``), else the folders
``data.roots.mnist`` and ``data.roots.usps`` of the project's ``params.yaml`` where both exist, else
``../shared/data/{mnist,usps}`` (the project's benchmark data); it exits with a note when none is there. The run
happens in ``--workdir`` (default ``bench/out/real_digits``): a copy of the repository's tracked files whose
``params.yaml`` gets the profile, the seeds and the data roots, then ``snakemake reports/<experiment>.csv``.
Running it again resumes: finished stages are not rerun. It prints each experiment's report rows (target accuracy,
paper value, model selection), the wall time of every stage from Snakemake's benchmark files, and what those times
add up to on ``--cores`` cores (the critical path and a list schedule of the DAG). ``--schedule-only`` prints just
that for a workdir whose stages have run, for instance stage by stage in separate sessions:

    python bench/bench_real_digits.py --experiments usps_mnist --workdir /tmp/full --schedule-only
"""

from __future__ import annotations

import argparse
import csv
import heapq
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def data_roots(option: Path | None) -> dict[str, Path] | None:
    """Where real MNIST and USPS are: ``option``'s ``mnist/`` and ``usps/``, else params.yaml's ``data.roots``
    (relative to the project), else ``../shared/data``; None when the one asked for (or every one) lacks them."""
    if option is not None:
        candidates = [{"mnist": option / "mnist", "usps": option / "usps"}]
    else:
        roots = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["roots"]
        candidates = [{name: ROOT / roots[name] for name in ("mnist", "usps")},
                      {"mnist": SHARED / "mnist", "usps": SHARED / "usps"}]
    return next((found for found in candidates if all(p.is_dir() for p in found.values())), None)


def workspace(workdir: Path, profile: str, seeds: list[int], experiments: list[str],
              roots: dict[str, Path] | None = None) -> None:
    """Copy the tracked files into ``workdir`` (kept between runs) and write its params.yaml."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        src, dst = ROOT / name, workdir / name
        if src.is_file() and (not dst.exists() or dst.read_bytes() != src.read_bytes()):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = profile
    raw["seeds"] = seeds
    roots = roots or {"mnist": SHARED / "mnist", "usps": SHARED / "usps"}
    raw["data"]["roots"].update({name: str(path.resolve()) for name, path in roots.items()})
    raw["dvc_experiments"] = experiments
    text = yaml.safe_dump(raw, sort_keys=False)
    if not (workdir / "params.yaml").is_file() or (workdir / "params.yaml").read_text() != text:
        (workdir / "params.yaml").write_text(text)


def stage_times(workdir: Path, experiment: str) -> list[tuple[str, float]]:
    """(stage, wall seconds) of the DAG's stages for ``experiment``, from Snakemake's benchmark files."""
    params = load_params(workdir / "params.yaml")
    times = []
    for stage in build_stages(params, (experiment,)):
        tsv = workdir / "benchmarks" / f"{stage.name}.tsv"
        if tsv.is_file():
            with tsv.open() as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
            if rows:
                times.append((stage.name, float(rows[-1]["s"])))
    return times


def schedule(workdir: Path, experiment: str, cores: int) -> tuple[float, float, float, list[str]]:
    """(total stage seconds, critical path, list-schedule makespan on ``cores``, stages without a time) of the
    experiment's DAG from its measured stage times; a stage runs on one core, longest remaining path first."""
    stages = build_stages(load_params(workdir / "params.yaml"), (experiment,))
    producer = {out: s.name for s in stages for out in s.outs}
    deps = {s.name: {producer[d] for d in s.deps if d in producer} for s in stages}
    measured = dict(stage_times(workdir, experiment))
    seconds = {s.name: measured.get(s.name, 0.0) for s in stages}
    path: dict[str, float] = {}

    def longest(name: str) -> float:  # the stage and the longest chain of stages that needs it done first
        if name not in path:
            path[name] = seconds[name] + max((longest(d) for d in deps[name]), default=0.0)
        return path[name]

    critical = max((longest(n) for n in seconds), default=0.0)
    tail = {n: 0.0 for n in seconds}  # longest chain after n: what list scheduling favours
    for s in reversed(stages):
        for d in deps[s.name]:
            tail[d] = max(tail[d], seconds[s.name] + tail[s.name])
    done: set[str] = set()
    started: set[str] = set()
    running: list[tuple[float, str]] = []
    clock = 0.0
    while len(done) < len(seconds):
        ready = sorted((n for n in seconds if n not in started and deps[n] <= done),
                       key=lambda n: -tail[n] - seconds[n])
        for name in ready[: cores - len(running)]:
            heapq.heappush(running, (clock + seconds[name], name))
            started.add(name)
        clock, name = heapq.heappop(running)
        done.add(name)
    return sum(seconds.values()), critical, clock, sorted(n for n in seconds if n not in measured)


def print_schedule(workdir: Path, experiment: str, cores: int) -> None:
    total, critical, makespan, missing = schedule(workdir, experiment, cores)
    print(f"  measured stage time {total / 60:.1f} min; critical path {critical / 60:.1f} min; "
          f"on {cores} cores (list schedule) {makespan / 60:.1f} min")
    if missing:
        print(f"  no time measured for: {', '.join(missing)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["mnist_usps", "usps_mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--profile", default="full")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "real_digits")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="a folder holding mnist/ and usps/ (default: params.yaml's data.roots, else "
                             "../shared/data)")
    parser.add_argument("--schedule-only", action="store_true",
                        help="run nothing: add up the workdir's measured stage times on --cores cores")
    args = parser.parse_args()
    if args.schedule_only:
        if not (args.workdir / "params.yaml").is_file():
            print(f"error: {args.workdir} holds no run (no params.yaml): give the --workdir of an earlier run",
                  file=sys.stderr)
            return 2
        for experiment in args.experiments:
            print(experiment)
            print_schedule(args.workdir, experiment, args.cores)
        return 0
    roots = data_roots(args.data_root)
    if roots is None:
        where = args.data_root or f"params.yaml's data.roots or {SHARED}"
        print(f"skipped: real MNIST and USPS (mnist/ and usps/) not found in {where}")
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    workspace(args.workdir, args.profile, args.seeds, args.experiments, roots)
    targets = [f"reports/{e}.csv" for e in args.experiments]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", str(args.cores), "--quiet",
                           "rules", "--keep-going"], cwd=args.workdir)
    wall = time.perf_counter() - start
    print(f"\n{args.profile} profile, seeds {' '.join(map(str, args.seeds))}, {args.cores} cores: {wall / 60:.1f} min"
          f" (workdir {args.workdir})")
    for experiment in args.experiments:
        report = args.workdir / "reports" / f"{experiment}.csv"
        print(f"\n{experiment}")
        if report.is_file():
            with report.open() as f:
                rows = list(csv.DictReader(f))
            width = max(len(r["method"]) for r in rows)
            print(f"  {'row':{width}}  {'target %':>12}  {'paper':>12}  model selection")
            for r in rows:
                paper = r["paper"] or "-"
                print(f"  {r['method']:{width}}  {r['target_acc']:>12}  {paper:>12}  {r['model_selection']}")
        else:
            print("  no report (a stage failed: see the Snakemake log above)")
        times = stage_times(args.workdir, experiment)
        if times:
            print("  stage wall times:")
            for name, seconds in times:
                print(f"    {name:60s} {seconds:8.1f} s")
            print_schedule(args.workdir, experiment, args.cores)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
