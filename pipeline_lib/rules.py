"""Snakemake rules by stage kind: one rule per stage module, its jobs told apart by wildcards.

The stage list (:mod:`pipeline_lib.dag`) names every job. Snakemake wants rules with wildcards, so that
``--forcerun train_supervised``, ``--until translate``, ``--set-resources train_cyclegan:gpu=1`` and a cluster
profile's per-rule resources mean something. A rule's patterns are read off its jobs: the value of each
command argument becomes a wildcard of the argument's name (``--experiment mnist5k_mnistm`` ->
``{experiment}``) in the outputs, the log and the benchmark. Every job's exact paths must come back from
the patterns, and every job of a rule must share them; a method whose stages break this gets a one-line
error when the DAG is built. Wildcards only take the values the jobs use, so no rule claims another's file.
A job's inputs, command and params values are looked up from its wildcards, never re-derived.

Outputs a stage shows in ``snakemake --report`` (:class:`~pipeline_lib.registry.Figure`) keep one caption file
per output pattern, the same for every job of the rule; where a job's figure is filed (category, subcategory)
and its labels are the job's own, looked up from its wildcards like the rest. Captions are read by the report
only: they are neither inputs nor params of a job, so editing one reruns nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from pipeline_lib import codedeps, registry
from pipeline_lib.config import Params, RuleResources
from pipeline_lib.dag import INDEX_RULE, Stage
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Figure

#: the files of a folder shown in the report (Figure.row_key): one ``<row>.png`` per report row
ROW_FILES = "{row}.png"


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
    captions: dict[str, str]  # output pattern -> the caption file of the figure it is (every job's)
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

    def figure(self, wildcards: Mapping[str, str], pattern: str) -> Figure:
        """The job's figure at output ``pattern`` (one of :attr:`captions`)."""
        stage = self.stage(wildcards)
        path = stage.outs[self.outs.index(pattern)]
        return next(f for f in stage.figures if f.path == path)

    def labels(self, wildcards: Mapping[str, str], pattern: str) -> dict[str, str]:
        """The labels of the job's figure at ``pattern``; a file of a folder figure adds its row's label."""
        figure = self.figure(wildcards, pattern)
        row = {figure.row_key: registry.row(wildcards["row"]).label} if figure.row_key else {}
        return {**dict(figure.labels), **row}

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
    """The stage's name and outputs as patterns (the rule's signature)."""
    return tuple(_pattern(text, stage.args) for text in (stage.name, *stage.outs))


def _shown(stage: Stage) -> tuple[tuple[int, str], ...]:
    """Which of the stage's outputs it shows in the report (their positions), with their caption files."""
    for figure in stage.figures:
        if figure.path not in stage.outs:
            raise PipelineError(f"stage {stage.name}: figure {figure.path} is not one of its outputs; show an "
                                "output, or add the file to the stage's outs")
        if (figure.path in stage.dir_outs) != bool(figure.row_key):
            raise PipelineError(f"stage {stage.name}: figure {figure.path}: a folder is shown as one <row>.png per "
                                "report row; give folders, and only folders, a Figure.row_key")
        if not (codedeps.ROOT / figure.caption_file).is_file():
            raise PipelineError(f"stage {stage.name}: figure {figure.path}'s caption {figure.caption_file} does not "
                                "exist; write it")
    return tuple(sorted((stage.outs.index(f.path), f.caption_file) for f in stage.figures))


def _rule(name: str, stages: list[Stage], resources: RuleResources) -> Rule:
    layouts: dict[tuple[str, ...], list[Stage]] = {}
    for stage in stages:
        layouts.setdefault(_layout(stage), []).append(stage)
    if len(layouts) > 1:
        (a, *_), (b, *_) = list(layouts.values())[:2]
        raise PipelineError(f"rule {name}: stages {a.name} and {b.name} lay out their outputs differently "
                            f"({a.outs[0]} vs {b.outs[0]}); give them one layout or a rule of their own "
                            "(StageSpec.rule)")
    shown: dict[tuple[tuple[int, str], ...], Stage] = {}
    for stage in stages:
        shown.setdefault(_shown(stage), stage)
    if len(shown) > 1:
        a, b = list(shown.values())[:2]
        raise PipelineError(f"rule {name}: stages {a.name} and {b.name} show different outputs or captions in the "
                            "report; give every stage of a rule the same figures and caption files, or a rule of "
                            "its own (StageSpec.rule)")
    layout = next(iter(layouts))
    first = stages[0]
    wildcards = tuple(k for k, _ in first.args if "{" + k + "}" in layout[0])
    for stage in stages:
        values = {k: str(v) for k, v in stage.args}
        for pattern, text in zip(layout, (stage.name, *stage.outs)):
            if pattern.format(**values) != text:
                raise PipelineError(f"rule {name}: {text} is not {pattern} with the stage's arguments; "
                                    "name the output after them")
    for pattern in layout[1:]:
        missing = [w for w in wildcards if "{" + w + "}" not in pattern]
        if missing:
            raise PipelineError(f"rule {name}: output {pattern} does not name {', '.join(missing)}; every output "
                                "of a stage must say which job wrote it")
    jobs = {tuple(str(dict(s.args)[w]) for w in wildcards): s for s in stages}
    constraints = {w: "|".join(re.escape(v) for v in sorted({k[i] for k in jobs}, key=lambda v: (-len(v), v)))
                   for i, w in enumerate(wildcards)}
    outs = layout[1:]
    patterns = dict(zip(first.outs, outs))
    return Rule(name=name, wildcards=wildcards, outs=outs, dir_outs=tuple(patterns[o] for o in first.dir_outs),
                captions={outs[i]: caption for i, caption in next(iter(shown))},
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
