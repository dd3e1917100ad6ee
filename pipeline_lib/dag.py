"""The one pipeline DAG, from which both runners are built.

``build_stages(params)`` lists every stage (name, command, inputs, outputs, params keys). The
methods declare their stages in the registry (:mod:`pipeline_lib.registry`); this module adds the
stages every experiment has (``prepare`` per domain, ``evaluate`` per row and seed, ``report``) and
completes each stage with its exact dependencies:

- code: the import closure of its stage module, narrowed to the domains and backbone it uses
  (:mod:`pipeline_lib.codedeps`);
- params: the keys it reads, narrowed to the domains it opens (a domain's root or folder definition,
  never the whole ``data`` section), and only keys that params.yaml spells out (a default is no key);
  ``profile`` too wherever one of them is given per profile;
- data no stage writes: a real or folder domain's ``prepare`` depends on its dataset folder (:class:`RawData`),
  which ``dvc.yaml`` lists as the folder (DVC hashes it) and Snakemake as the folder's content manifest
  (:mod:`pipeline_lib.domains.manifest`), so an edited, added or removed frame reruns it under both runners.

The Snakefile turns each stage into a rule; ``dvc.yaml`` is written from the same list by
``python -m pipeline_lib.dag`` (``make dag``), and ``tests/test_dag.py`` proves the committed file
is current and that Snakemake plans the same jobs and commands. Snakemake gets rules for every
experiment in params.yaml (so any ``reports/<name>.csv`` can be asked for); ``dvc.yaml`` holds the
stages behind ``dvc_experiments`` only, since ``dvc repro`` builds everything it lists.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_lib import codedeps, paths, registry
from pipeline_lib.config import ARCH_MODULES, PROFILES, Params, load_params, section_names
from pipeline_lib.domains.resolve import Domain, check_compatible, resolve_domain
from pipeline_lib.gpus import check_device
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Experiment, Figure, Plot, StageSpec, losses_plot

ROOT = codedeps.ROOT
ALL_METHODS = "All methods"  # the report's subcategory of the figures that compare every row
INDEX_RULE = "prepare_index"  # a streamed domain's prepare writes an index of files on disk, not the data
DVC_HEADER = (
    "# GENERATED from params.yaml by `make dag` (python -m pipeline_lib.dag); do not edit by hand.\n"
    "# The Snakefile builds its rules from the same stage list (pipeline_lib/dag.py).\n"
)


@dataclass(frozen=True)
class RawData:
    """A dataset folder that a stage reads and no stage writes: the root of a real or folder domain, read by its
    ``prepare``. Each runner tracks its content its own way (:mod:`pipeline_lib.domains.manifest`): DVC hashes
    the folder (a dependency in dvc.yaml), Snakemake reads its manifest, refreshed when the DAG is built."""

    domain: str
    root: str

    @property
    def manifest(self) -> str:
        return str(paths.raw_manifest(self.domain))


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...]
    dir_outs: tuple[str, ...] = field(default=())  # outputs that are directories (sharded datasets)
    figures: tuple[Figure, ...] = field(default=())  # outputs shown in `snakemake --report`, with their captions
    metrics: tuple[str, ...] = field(default=())  # outputs that are DVC metrics
    plots: tuple[Plot, ...] = field(default=())  # DVC plots of its outputs
    rule: str = ""  # the Snakemake rule (pipeline_lib/rules.py): the stage module, e.g. train_supervised
    args: tuple[tuple[str, Any], ...] = field(default=())  # its command's arguments (the rule's wildcards)
    raw: tuple[RawData, ...] = field(default=())  # dataset folders it reads (a real or folder domain's prepare)
    backbone: str | None = None  # the backbones entry of the model it builds, if any

    @property
    def dvc_deps(self) -> tuple[str, ...]:
        """Its dependencies in dvc.yaml: :attr:`deps` and the dataset folders, which DVC hashes itself."""
        return self.deps + tuple(r.root for r in self.raw)

    @property
    def snakemake_inputs(self) -> tuple[str, ...]:
        """Its inputs under Snakemake: :attr:`deps` and the folders' manifests (Snakemake compares times only)."""
        return self.deps + tuple(r.manifest for r in self.raw)


def _written(raw: dict[str, Any] | None, key: str) -> str | None:
    """``key`` as params.yaml holds it: None where it is left to its default; cut short where the
    value is given per profile above it (DVC compares what the file says)."""
    if raw is None:
        return key
    node: Any = raw
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, dict) and node and set(node) <= set(PROFILES):
            return ".".join(parts[:i])
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return key


def _per_profile(raw: dict[str, Any] | None, key: str) -> bool:
    """Whether params.yaml gives the value of ``key`` (or anything under it) per profile."""
    def any_profile(node: Any) -> bool:
        if isinstance(node, dict):
            return (bool(node) and set(node) <= set(PROFILES)) or any(any_profile(v) for v in node.values())
        return isinstance(node, list) and any(any_profile(v) for v in node)
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return any_profile(node)


def _tracked(params: Params, domain: Domain) -> bool:
    """Whether ``prepare`` of ``domain`` depends on its dataset folder: a real or folder domain's, except the digit
    sets while ``data.download`` is true (torchvision fetches them into the cache; the folder may not exist)."""
    return domain.root is not None and not (domain.kind == "real_digits" and params.data.download)


def complete(params: Params, spec: StageSpec, domains: dict[str, Domain], prepare: Domain | None = None) -> Stage:
    """A declared stage with its code dependencies, the params keys of the domains it opens and the ImageNet weights
    file its backbone loads (``backbones.<b>.weights``: a missing one stops both runners' plans, naming it)."""
    wanted: list[str] = list(spec.modules)
    files: tuple[str, ...] = ()
    if spec.backbone is not None:
        backbone = params.backbones[spec.backbone]
        wanted += ARCH_MODULES[backbone.arch]
        files = (str(backbone.weights),) if backbone.weights is not None else ()
    keys = list(spec.params) + (list(registry.SERIES_KEYS) if spec.series else [])
    read = {key.removeprefix("segmentation.").split(".")[0] for key in keys}  # the method sections it reads
    wanted += [codedeps.params_module(name) for name in section_names() if name in read]
    if prepare is not None:
        wanted += prepare.modules
        keys += prepare.prepare_keys
    for name in spec.domains:
        keys += domains[name].stream_keys
    written = [k for k in (_written(params.raw, key) for key in dict.fromkeys(keys)) if k is not None]
    if any(_per_profile(params.raw, k) for k in written):
        written.insert(0, "profile")  # the resolved value changes with the profile
    histories = tuple(losses_plot(out, f"{spec.name}: training losses per epoch") for out in spec.outs
                      if paths.is_history(out))
    series = (str(paths.series(Path(spec.series))),) if spec.series else ()
    raw = (RawData(prepare.name, str(prepare.root)),) if prepare is not None and _tracked(params, prepare) else ()
    return Stage(name=spec.name, cmd=spec.cmd,
                 deps=spec.deps + files + codedeps.code_deps([f"stages.{spec.module}"], wanted),
                 outs=spec.outs + series, params=tuple(dict.fromkeys(written)), dir_outs=spec.dir_outs + series,
                 figures=spec.figures,
                 metrics=spec.metrics, plots=spec.plots + histories, rule=spec.rule or spec.module, args=spec.args,
                 raw=raw, backbone=spec.backbone)


def _prepare(params: Params, domain: Domain) -> StageSpec:
    samples = str(paths.domain_samples_png(domain.name))
    return StageSpec(
        name=f"prepare__{domain.name}", module="prepare", args=(("domain", domain.name),),
        deps=tuple(str(resolve_domain(params, d).artifact) for d in domain.inputs),
        outs=(str(domain.artifact), samples), params=(),
        rule=INDEX_RULE if domain.streamed else "prepare",
        figures=(Figure(samples, "domain_samples", "Domains", domain.name, (("figure", "training samples"),)),))


def _evaluate(exp: Experiment, name: str, seed: int, selected: bool) -> StageSpec:
    """``evaluate`` of a row's seed: its checkpoint, or, for a row with a series (``selected``), the checkpoint
    ``selection.validator`` picked from it."""
    row = registry.rows()[name]
    assert row.model is not None
    picked = (str(paths.selection_json(exp.name, name)), str(paths.series(row.model.checkpoint(exp, seed)))) \
        if selected else ()
    return StageSpec(
        name=f"evaluate__{exp.name}__{name}__s{seed}", module="evaluate",
        args=(("experiment", exp.name), ("method", name), ("seed", seed)),
        deps=(str(row.model.checkpoint(exp, seed)), *picked, *map(str, row.model.inputs(exp, seed)), *exp.data),
        outs=(str(paths.metrics_json(exp.name, name, seed)), str(paths.predictions_preview(exp.name, name, seed))),
        params=exp.keys + (exp.key("evaluate"),) + (("selection.validator",) if selected else ()),
        domains=(exp.source, exp.target), backbone=exp.backbone,
        modules=(row.model.loader.split(":")[0], *codedeps.spec_modules()),
        metrics=(str(paths.metrics_json(exp.name, name, seed)),))


#: params keys ``select`` reads beyond the experiment's (how many images the validators see)
SELECT_KEYS = ("selection.target_samples", "selection.source_samples", "selection.frames")


def _series_deps(exp: Experiment, name: str) -> tuple[str, ...]:
    model = registry.rows()[name].model
    assert model is not None
    return tuple(str(p) for s in exp.row_seeds(name) for p in (paths.series(model.checkpoint(exp, s)),
                                                                   *model.inputs(exp, s)))


def _select(exp: Experiment, name: str) -> StageSpec:
    model = registry.rows()[name].model
    assert model is not None
    out = str(paths.selection_json(exp.name, name))
    return StageSpec(
        name=f"select__{exp.name}__{name}", module="select", args=(("experiment", exp.name), ("method", name)),
        deps=tuple(dict.fromkeys(_series_deps(exp, name) + exp.data)), outs=(out,),
        params=exp.keys + (exp.key("evaluate"),) + SELECT_KEYS, domains=(exp.source, exp.target),
        backbone=exp.backbone, modules=(model.loader.split(":")[0], *codedeps.spec_modules()))


def _report(exp: Experiment, method_specs: list[StageSpec]) -> StageSpec:
    models = [r for r in exp.rows if registry.rows()[r].model is not None]
    confusion = str(paths.confusion_dir(exp.name))
    pngs = tuple(str(p) for p in (paths.curves_png(exp.name), paths.predictions_png(exp.name),
                                  paths.tradeoff_png(exp.name)))
    inputs = [str(paths.metrics_json(exp.name, m, s)) for m in models for s in exp.row_seeds(m)]
    inputs += dict.fromkeys(c.csv for c in registry.curves(exp, method_specs))
    inputs += [str(paths.predictions_preview(exp.name, m, exp.row_seeds(m)[0])) for m in models]
    inputs += [str(p) for r in exp.rows for p in registry.rows()[r].extras.inputs(exp)]
    inputs += [str(paths.selection_json(exp.name, r)) for r in registry.selected_rows(exp)]
    inputs = list(dict.fromkeys(inputs))  # rows may share a file (e.g. one figure of several rows)
    csv = str(paths.report_csv(exp.name))
    seed_keys = dict.fromkeys(f"{exp.key(r.plan.seeds_from)}.n_seeds" for r in map(registry.rows().get, exp.rows)
                              if r is not None and r.plan.seeds_from)
    summary = str(paths.report_metrics(exp.name))
    plots = tuple(Plot(str(paths.confusion_json(exp.name, m)), title=exp.confusion_title(m),
                       template="confusion_counts",
                       x="predicted", y="actual", x_label="predicted class", y_label="true class") for m in models)
    plots += tuple(Plot(p) for p in pngs)
    return StageSpec(
        name=f"report__{exp.name}", module="report", args=(("experiment", exp.name),), deps=tuple(inputs),
        outs=(csv, confusion, *pngs, summary, str(paths.validators_csv(exp.name))),
        params=("profile", "seeds", f"experiments.{exp.name}", f"backbones.{exp.backbone}.arch", *seed_keys,
                "selection.validator"),
        domains=(exp.source, exp.target),
        # it rebuilds the rows' stages for their curves, and states the papers' values
        modules=codedeps.spec_modules() + codedeps.params_modules() + codedeps.papers_modules(),
        dir_outs=(confusion,), figures=_report_figures(exp), metrics=(summary,), plots=plots)


def _report_figures(exp: Experiment) -> tuple[Figure, ...]:
    """The report stage's outputs, every one shown: the table and the figures that compare the rows (the
    confusion folder file by file, each labelled with its row)."""
    every = {"method": "all methods"}
    return (exp.figure(paths.report_csv(exp.name), "report_table", ALL_METHODS, figure="results table", **every),
            exp.figure(paths.confusion_dir(exp.name), "confusion", ALL_METHODS, row_key="method",
                       figure="confusion matrix"),
            exp.figure(paths.curves_png(exp.name), "training_curves", ALL_METHODS, figure="training curves", **every),
            exp.figure(paths.predictions_png(exp.name), "predictions", ALL_METHODS, figure="target predictions",
                       **every),
            exp.figure(paths.tradeoff_png(exp.name), "tradeoff", ALL_METHODS, figure="source vs target", **every))


def experiment_stages(params: Params, experiment: str) -> list[Stage]:
    """Every stage the report of ``experiment`` needs, dependencies first (its class lists are checked
    by :func:`build_stages`)."""
    exp = Experiment(params, experiment)
    domains: dict[str, Domain] = {}

    def add(name: str) -> None:
        domain = resolve_domain(params, name)
        for needed in domain.inputs:
            add(needed)
        domains.setdefault(name, domain)

    add(exp.source)
    add(exp.target)
    stages = [complete(params, _prepare(params, d), domains, prepare=d) for d in domains.values()]
    method_specs = registry.method_stages(exp)
    registry.check_series(exp, method_specs)
    selected = registry.selected_rows(exp)
    specs = method_specs + [_select(exp, r) for r in selected]
    specs += [_evaluate(exp, r, s, r in selected) for r in exp.rows if registry.rows()[r].model is not None
              for s in exp.row_seeds(r)]
    specs.append(_report(exp, method_specs))
    return stages + [complete(params, spec, domains) for spec in specs]


def build_stages(params: Params, experiments: tuple[str, ...] | None = None) -> list[Stage]:
    """Stages for the given experiments (default: all), each once, dependencies first. Every experiment
    of params.yaml is checked (its rows, and that its source and target share one class list)."""
    registry.check_params(params)
    for name, exp in params.experiments.items():
        check_compatible(resolve_domain(params, exp.source), resolve_domain(params, exp.target),
                         f"experiments.{name}")
    seen: dict[str, Stage] = {}
    for name in experiments if experiments is not None else tuple(params.experiments):
        for stage in experiment_stages(params, name):
            seen.setdefault(stage.name, stage)
    return list(seen.values())


def dvc_yaml_text(params: Params) -> str:
    """dvc.yaml for the dvc_experiments. Outputs are ``persist``: DVC must not delete a stage's outputs
    before running it (every stage replaces them atomically itself), so a stage that refuses to run
    because another runner holds the workspace (``pipeline_lib/locks.py``) leaves them untouched."""
    built = build_stages(params, params.dvc_experiments)
    stages = {}
    for st in built:
        entry: dict[str, Any] = {"cmd": st.cmd, "deps": list(st.dvc_deps), "params": list(st.params),
                                 "outs": [{out: {"persist": True}} for out in st.outs if out not in st.metrics]}
        if st.metrics:
            entry["metrics"] = [{out: {"persist": True}} for out in st.metrics]
        stages[st.name] = entry
    plots = [plot.entry() for st in built for plot in st.plots]
    return DVC_HEADER + yaml.safe_dump({"stages": stages, "plots": plots}, sort_keys=False, width=120)


def param_values(params: Params, keys: tuple[str, ...]) -> dict[str, Any]:
    """Resolved values of ``keys`` (dotted paths): what Snakemake records to detect param changes."""
    dumped = params.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = dumped
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write dvc.yaml from params.yaml (or --check it is current).")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="dvc.yaml")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not current")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        text = dvc_yaml_text(params)
        if args.check:
            check_device(params.device)  # `make demo` checks before Snakemake starts a job
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text() != text:
            print(f"error: {out} is out of date with {args.params}: run `make dag`", file=sys.stderr)
            return 1
        return 0
    from pipeline_lib.artifacts import write_text
    write_text(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
