"""Snakemake rules by stage kind: one rule per stage module, its jobs told apart by wildcards.

The stage list (:mod:`pipeline_lib.dag`) names every job. Snakemake wants rules with wildcards, so that
``--forcerun train_supervised``, ``--until translate``, ``--set-resources train_cyclegan:gpu=1`` and a cluster
profile's per-rule resources mean something. A rule's patterns are read off its jobs: the value of each
command argument becomes a wildcard of the argument's name (``--experiment mnist5k_mnistm`` ->
``{experiment}``) in the outputs, the log and the benchmark. Every job's exact paths must come back from
the patterns, and every job of a rule must share them; a method whose stages break this gets a one-line
error when the DAG is built. Wildcards only take the values the jobs use, so no rule claims another's file.
A job's inputs, command and params values are looked up from its wildcards, never re-derived.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline_lib import codedeps
from pipeline_lib.config import Params, RuleResources
from pipeline_lib.dag import INDEX_RULE, Stage
from pipeline_lib.errors import PipelineError


def _pattern(text: str, args: tuple[tuple[str, Any], ...]) -> str:
    """``text`` with each argument's value replaced by ``{name}``: the longest values first, between
    non-alphanumeric characters only (``mnistm`` is not replaced inside ``mnistm2``), seeds after ``seed`` or
    ``__s``."""
    marks: dict[str, str] = {}
    for i, (name, value) in enumerate(sorted(args, key=lambda kv: -len(str(kv[1])))):
        mark = f"\0{i}\0"
        marks[mark] = "{" + name + "}"
        if name == "seed":
            text = re.sub(rf"(?<=seed){value}(?!\d)|(?<=__s){value}(?!\d)", mark, text)
        else:
            text = re.sub(rf"(?<![A-Za-z0-9\0]){re.escape(str(value))}(?![A-Za-z0-9\0])", mark, text)
    for mark, wildcard in marks.items():
        text = text.replace(mark, wildcard)
    return text


@dataclass(frozen=True)
class Rule:
    """One Snakemake rule: the patterns its jobs share and the jobs by their wildcard values."""

    name: str
    wildcards: tuple[str, ...]
    outs: tuple[str, ...]
    dir_outs: tuple[str, ...]
    report_outs: tuple[str, ...]
    report_category: str
    log: str
    benchmark: str
    constraints: dict[str, str]
    jobs: dict[tuple[str, ...], Stage]
    resources: RuleResources

    def stage(self, wildcards: Mapping[str, str]) -> Stage:
        key = tuple(str(wildcards[w]) for w in self.wildcards)
        if key not in self.jobs:
            raise PipelineError(f"rule {self.name}: no stage for {dict(zip(self.wildcards, key))}; ask for a file "
                                "of an experiment in params.yaml")
        return self.jobs[key]

    def command(self, wildcards: Mapping[str, str], gpu: int, first_output: str = "", workdir: str = "") -> str:
        """The job's command; with more than one GPU, under ``torchrun`` with one process per GPU.

        Under a default storage provider (S3, as on Kubernetes) Snakemake keeps a job's files under
        ``.snakemake/storage/<provider>/<bucket>/<prefix>/`` and gives that path as ``first_output``. The stages
        name their files relative to the working folder, so the job then runs in that folder, with the code
        and params.yaml of ``workdir`` (the workflow's folder)."""
        stage = self.stage(wildcards)
        launch = f"torchrun --standalone --nproc_per_node {gpu} -m "  # standalone: a free port per job
        cmd = stage.cmd.replace("python3 -m ", launch, 1) if gpu > 1 else stage.cmd
        declared = stage.outs[0]
        root = first_output[:-len(declared)] if first_output != declared and first_output.endswith(declared) else ""
        if not root:
            return cmd
        return (f"(cd {shlex.quote(root)} && PYTHONPATH={shlex.quote(workdir)} "
                f"{cmd} --params {shlex.quote(str(Path(workdir) / 'params.yaml'))})")


def _layout(stage: Stage) -> tuple[str, ...]:
    """The stage's name, outputs and report category as patterns (the rule's signature)."""
    return tuple(_pattern(text, stage.args) for text in (stage.name, stage.report_category, *stage.outs))


def _rule(name: str, stages: list[Stage], resources: RuleResources) -> Rule:
    layouts: dict[tuple[str, ...], list[Stage]] = {}
    for stage in stages:
        layouts.setdefault(_layout(stage), []).append(stage)
    if len(layouts) > 1:
        (a, *_), (b, *_) = list(layouts.values())[:2]
        raise PipelineError(f"rule {name}: stages {a.name} and {b.name} lay out their outputs differently "
                            f"({a.outs[0]} vs {b.outs[0]}); give them one layout or a rule of their own "
                            "(StageSpec.rule)")
    layout = next(iter(layouts))
    first = stages[0]
    wildcards = tuple(k for k, _ in first.args if "{" + k + "}" in layout[0])
    for stage in stages:
        values = {k: str(v) for k, v in stage.args}
        for pattern, text in zip(layout, (stage.name, stage.report_category, *stage.outs)):
            if pattern.format(**values) != text:
                raise PipelineError(f"rule {name}: {text} is not {pattern} with the stage's arguments; "
                                    "name the output after them")
    for pattern in layout[2:]:
        missing = [w for w in wildcards if "{" + w + "}" not in pattern]
        if missing:
            raise PipelineError(f"rule {name}: output {pattern} does not name {', '.join(missing)}; every output "
                                "of a stage must say which job wrote it")
    jobs = {tuple(str(dict(s.args)[w]) for w in wildcards): s for s in stages}
    constraints = {w: "|".join(re.escape(v) for v in sorted({k[i] for k in jobs}, key=lambda v: (-len(v), v)))
                   for i, w in enumerate(wildcards)}
    patterns = dict(zip(first.outs, layout[2:]))
    return Rule(name=name, wildcards=wildcards, outs=layout[2:],
                dir_outs=tuple(patterns[o] for o in first.dir_outs),
                report_outs=tuple(patterns[o] for o in first.report_outs), report_category=layout[1],
                log=f"logs/{layout[0]}.log", benchmark=f"benchmarks/{layout[0]}.tsv", constraints=constraints,
                jobs=jobs, resources=resources)


def build_rules(params: Params, stages: list[Stage]) -> list[Rule]:
    """The stages grouped into one rule per kind, with each rule's resources from ``params.resources``."""
    by_rule: dict[str, list[Stage]] = {}
    for stage in stages:
        by_rule.setdefault(stage.rule, []).append(stage)
    known = {p.stem for p in (codedeps.ROOT / "stages").glob("*.py") if p.stem != "__init__"} | {INDEX_RULE}
    unknown = sorted(set(params.resources.rules) - known)
    if unknown:
        raise PipelineError(f"resources.rules.{unknown[0]}: no such rule; the rules are the stage kinds "
                            f"({', '.join(sorted(known))})")
    return [_rule(name, jobs, params.resources.for_rule(name, params.threads_per_job))
            for name, jobs in by_rule.items()]
