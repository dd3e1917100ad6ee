"""The one pipeline DAG, from which both runners are built.

``build_stages(params)`` lists every stage (name, command, inputs, outputs, params keys).
The Snakefile turns each stage into a rule; ``dvc.yaml`` is written from the same list
by ``python -m pipeline_lib.dag`` (``make dag``), and ``tests/test_dag.py`` proves the
committed file is current and that Snakemake plans the same jobs and commands.

Snakemake gets rules for every experiment in params.yaml (so any ``reports/<name>.csv``
can be asked for); ``dvc.yaml`` holds the stages behind ``dvc_experiments`` only, since
``dvc repro`` builds everything it lists.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_lib import paths
from pipeline_lib.config import EMBEDDED_SCENE_DOMAINS, REAL_DIGIT_DOMAINS, Params, load_params
from pipeline_lib.domains import domain_inputs

ROOT = Path(__file__).resolve().parent.parent
DVC_HEADER = (
    "# GENERATED from params.yaml by `make dag` (python -m pipeline_lib.dag); do not edit by hand.\n"
    "# The Snakefile builds its rules from the same stage list (pipeline_lib/dag.py).\n"
)
DOMAIN_MODULES = {"mnist5k": "mnist5k", "syndigits": "syndigits", "mnistm": "mnistm", "optdigits": "optdigits",
                  "mnist": "torchvision_digits", "usps": "torchvision_digits", "svhn": "torchvision_digits",
                  "scenes_game": "scenes", "scenes_photo": "scenes"}  # others: segmentation.py
COMMON_CODE = ("pipeline_lib/config.py", "pipeline_lib/errors.py", "pipeline_lib/artifacts.py",
               "pipeline_lib/cli.py", "pipeline_lib/paths.py", "pipeline_lib/training.py", "pipeline_lib/runtime.py")


@dataclass(frozen=True)
class Stage:
    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...]
    dir_outs: tuple[str, ...] = field(default=())  # outputs that are directories (sharded datasets)
    report_outs: tuple[str, ...] = field(default=())  # outputs shown in `snakemake --report`
    report_category: str = ""


def code_deps(*patterns: str) -> tuple[str, ...]:
    """Source files a stage runs, as sorted repo-relative paths (globs allowed)."""
    files: set[str] = set(COMMON_CODE)
    for pattern in patterns:
        matches = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.is_file())
        if not matches:
            raise FileNotFoundError(f"no source file matches {pattern!r}")
        files.update(matches)
    return tuple(sorted(files))


def _py(module: str, **args: Any) -> str:
    return " ".join([f"python -m stages.{module}", *(f"--{k.replace('_', '-')} {v}" for k, v in args.items())])


def _prepare(domain: str, params: Params) -> Stage:
    needs = domain_inputs(domain, params)
    if domain in params.data.derived:
        keys: tuple[str, ...] = ("prepare.seed", f"data.derived.{domain}")
    elif domain in REAL_DIGIT_DOMAINS:
        keys = ("profile", "prepare.seed", "prepare.real", "data.roots", "data.download", "data.cache_dir")
    elif domain in EMBEDDED_SCENE_DOMAINS:
        keys = ("profile", "prepare.seed", "prepare.scenes")
    elif params.domain_task(domain) == "segmentation":  # real street scenes or a user's folder
        keys = ("data",) + ((f"prepare.{domain}",) if domain in ("gta5", "synthia") else ())
    else:
        keys = ("profile", "prepare.seed", f"prepare.{domain}")
    module = DOMAIN_MODULES.get(domain, "base" if domain in params.data.derived else "segmentation")
    return Stage(
        name=f"prepare__{domain}",
        cmd=_py("prepare", domain=domain),
        deps=tuple(str(paths.domain_npz(d)) for d in needs)
        + code_deps("stages/prepare.py", "pipeline_lib/plots.py", "pipeline_lib/domains/__init__.py",
                    "pipeline_lib/domains/base.py", "pipeline_lib/domains/frames.py",
                    f"pipeline_lib/domains/{module}.py"),
        outs=(str(paths.domain_artifact(params, domain)), str(paths.domain_samples_png(domain))),
        params=keys,
    )


TASK_CODE = {
    "classification": ("pipeline_lib/models/__init__.py", "pipeline_lib/models/base.py", "pipeline_lib/models/lenet.py",
                       "pipeline_lib/domains/transforms.py", "pipeline_lib/domains/tensors.py",
                       "pipeline_lib/domains/loading.py"),
    "segmentation": ("pipeline_lib/models/*.py", "pipeline_lib/domains/transforms.py", "pipeline_lib/domains/frames.py",
                     "pipeline_lib/domains/segmentation.py", "pipeline_lib/domains/loading.py"),
}


#: feature-level stages log the target test metric per epoch (training curves only)
MONITOR_CODE = ("pipeline_lib/evaluation.py", "pipeline_lib/metrics.py")


def model_code(params: Params, backbone: str) -> tuple[str, ...]:
    """The model and data-loading code a stage of ``backbone``'s track runs."""
    return TASK_CODE[params.backbones[backbone].task]


def _train_supervised(params: Params, domain: str, backbone: str, seed: int) -> Stage:
    model = paths.supervised_model(domain, backbone, seed)
    keys = ("profile", "device", "threads_per_job", f"{params.track(backbone).prefix}train_supervised",
            f"backbones.{backbone}")
    return Stage(
        name=f"train_supervised__{domain}__{backbone}__s{seed}",
        cmd=_py("train_supervised", domain=domain, backbone=backbone, seed=seed),
        deps=(str(paths.domain_artifact(params, domain)),)
        + code_deps("stages/train_supervised.py", *model_code(params, backbone)),
        outs=(str(model), str(paths.history(model))),
        params=keys + (("data",) if _streamed(params, domain) else ()),
    )


def _streamed(params: Params, domain: str) -> bool:
    """Frames read from the user's dataset folder at run time (so ``data`` roots are a param)."""
    return paths.domain_artifact(params, domain).suffix == ".json"


def _data_deps(params: Params, experiment: str) -> tuple[str, str]:
    exp = params.experiments[experiment]
    return str(paths.domain_artifact(params, exp.source)), str(paths.domain_artifact(params, exp.target))


def _data_keys(params: Params, experiment: str) -> tuple[str, ...]:
    """``data`` when a stage of the experiment streams frames from a user's dataset folder."""
    exp = params.experiments[experiment]
    return ("data",) if _streamed(params, exp.source) or _streamed(params, exp.target) else ()


def _method_keys(params: Params, experiment: str) -> tuple[str, ...]:
    """Params every training stage of an experiment's methods reads."""
    exp = params.experiments[experiment]
    return ("profile", "device", "threads_per_job", f"experiments.{experiment}", f"backbones.{exp.backbone}") \
        + _data_keys(params, experiment)


def _cycada(params: Params, experiment: str, seed: int) -> list[Stage]:
    """CyCADA's stages for one seed: CycleGAN -> translation -> task net -> feature adaptation."""
    exp = params.experiments[experiment]
    wanted = set(exp.methods)
    src_npz, tgt_npz = _data_deps(params, experiment)
    f_s = str(paths.supervised_model(exp.source, exp.backbone, seed))
    common = _method_keys(params, experiment)
    cyc = f"{params.track(exp.backbone).prefix}cycada"
    model_code_ = model_code(params, exp.backbone)
    cyclegan, translated = paths.cyclegan_model(experiment, seed), paths.translated_dataset(experiment, seed)
    pixel = paths.pixel_model(experiment, seed)
    stages: list[Stage] = []
    if wanted & {"cycada_pixel", "cycada_pixel_feat", "cycada_calibrator"}:
        stages += [
            Stage(name=f"train_cyclegan__{experiment}__s{seed}",
                  cmd=_py("train_cyclegan", experiment=experiment, seed=seed),
                  deps=(src_npz, tgt_npz, f_s) + code_deps("stages/train_cyclegan.py", "pipeline_lib/methods/cycada.py",
                                                           "pipeline_lib/losses.py", *model_code_),
                  outs=(str(cyclegan), str(paths.history(cyclegan))),
                  params=common + (f"{cyc}.cyclegan",)),
            Stage(name=f"translate__{experiment}__s{seed}",
                  cmd=_py("translate", experiment=experiment, seed=seed),
                  deps=(str(cyclegan), src_npz) + code_deps("stages/translate.py", "pipeline_lib/methods/cycada.py",
                                                            "pipeline_lib/plots.py", *model_code_),
                  outs=(str(translated), str(paths.translation_grid(experiment, seed))),
                  params=common + (f"{cyc}.cyclegan", f"{cyc}.translate"),
                  dir_outs=(str(translated),), report_outs=(str(paths.translation_grid(experiment, seed)),),
                  report_category=experiment),
            Stage(name=f"train_task__{experiment}__s{seed}",
                  cmd=_py("train_task", experiment=experiment, seed=seed),
                  deps=(str(translated), f_s) + code_deps("stages/train_task.py", *model_code_),
                  outs=(str(pixel), str(paths.history(pixel))),
                  params=common + (f"{cyc}.train_task",)),
        ]
    for method, variant in paths.CYCADA_VARIANTS.items():
        if method not in wanted:
            continue
        start = (f_s, src_npz) if variant == "feat" else (str(pixel), str(translated))
        adapted = paths.adapted_model(experiment, variant, seed)
        stages.append(Stage(
            name=f"adapt_features__{experiment}__{variant}__s{seed}",
            cmd=_py("adapt_features", experiment=experiment, variant=variant, seed=seed),
            deps=start + (tgt_npz,) + code_deps("stages/adapt_features.py", "pipeline_lib/methods/adda.py", *MONITOR_CODE,
                                                "pipeline_lib/losses.py", *model_code_),
            outs=(str(adapted), str(paths.history(adapted))),
            params=common + (f"{cyc}.adapt_features",)))
    return stages


def _gam(params: Params, experiment: str, seed: int) -> list[Stage]:
    """GAM's stages for one seed: Gaussian matching -> adversarial matching (with and without the
    weight regulariser), and ADDA + the regulariser (CyCADA's feature-level stage, reused)."""
    exp = params.experiments[experiment]
    wanted = set(exp.methods)
    data = _data_deps(params, experiment)
    f_s = str(paths.supervised_model(exp.source, exp.backbone, seed))
    track = params.track(exp.backbone)
    common = _method_keys(params, experiment)
    gam, code = f"{track.prefix}gam", model_code(params, exp.backbone)
    gaussian = paths.gam_model(experiment, "gaussian", seed)
    needs_gaussian = "gam_gaussian" in wanted or (
        {"gam", "gam_noreg"} & wanted and track.gam.match_activations.init == "gaussian")
    stages: list[Stage] = []
    if needs_gaussian:
        stages.append(Stage(
            name=f"gaussian_match__{experiment}__s{seed}", cmd=_py("gaussian_match", experiment=experiment, seed=seed),
            deps=(f_s, *data) + code_deps("stages/gaussian_match.py", "pipeline_lib/methods/gam.py",
                                          "pipeline_lib/plots.py", *code),
            outs=(str(gaussian), str(paths.source_or_not_png(experiment, seed))),
            params=common + (f"{gam}.gaussian_match",),
            report_outs=(str(paths.source_or_not_png(experiment, seed)),), report_category=experiment))
    for method, variant in (("gam", "full"), ("gam_noreg", "noreg")):
        if method not in wanted:
            continue
        model = paths.gam_model(experiment, variant, seed)
        init = (str(gaussian),) if track.gam.match_activations.init == "gaussian" else ()
        stages.append(Stage(
            name=f"match_activations__{experiment}__{variant}__s{seed}",
            cmd=_py("match_activations", experiment=experiment, variant=variant, seed=seed),
            deps=init + (f_s, *data) + code_deps("stages/match_activations.py", "pipeline_lib/methods/gam.py", *MONITOR_CODE,
                                                  "pipeline_lib/losses.py", *code),
            outs=(str(model), str(paths.history(model))), params=common + (f"{gam}.match_activations",)))
    if "adda_reg" in wanted:
        model = paths.gam_model(experiment, "adda_reg", seed)
        stages.append(Stage(
            name=f"adapt_features__{experiment}__feat_reg__s{seed}",
            cmd=_py("adapt_features", experiment=experiment, variant="feat_reg", seed=seed),
            deps=(f_s, *data) + code_deps("stages/adapt_features.py", "pipeline_lib/methods/adda.py", *MONITOR_CODE,
                                          "pipeline_lib/losses.py", *code),
            outs=(str(model), str(paths.history(model))),
            params=common + (f"{track.prefix}cycada.adapt_features", f"{gam}.adda_weight_reg",
                                 f"{gam}.match_activations.drift_reduction")))
    return stages


def _calibrator(params: Params, experiment: str, seed: int) -> list[Stage]:
    """The calibrator's stages for one seed (Ye et al.): train G_c for a frozen model, then export
    calibrator + model as one TorchScript file. ``cycada`` reuses CyCADA's pixel-only model and set."""
    exp = params.experiments[experiment]
    common, code = _method_keys(params, experiment), model_code(params, exp.backbone)
    cal = f"{params.track(exp.backbone).prefix}calibrator"
    src, tgt = _data_deps(params, experiment)
    stages: list[Stage] = []
    for method, variant in paths.CALIBRATOR_VARIANTS.items():
        if method not in exp.methods:
            continue
        frozen = str(paths.calibrator_frozen_model(params, experiment, variant, seed))
        source = src if variant == "raw" else str(paths.translated_dataset(experiment, seed))
        model, fourier = paths.calibrator_model(experiment, variant, seed), paths.fourier_png(experiment, variant, seed)
        stages += [
            Stage(name=f"train_calibrator__{experiment}__{variant}__s{seed}",
                  cmd=_py("train_calibrator", experiment=experiment, variant=variant, seed=seed),
                  deps=(frozen, source, tgt) + code_deps("stages/train_calibrator.py", "pipeline_lib/methods/calibrator.py",
                                                         "pipeline_lib/methods/adda.py", "pipeline_lib/losses.py",
                                                         "pipeline_lib/models/calibrator.py", "pipeline_lib/plots.py",
                                                         *MONITOR_CODE, *code),
                  outs=(str(model), str(paths.history(model)), str(fourier)),
                  params=common + (cal,), report_outs=(str(fourier),), report_category=experiment),
            Stage(name=f"export__{experiment}__{variant}__s{seed}",
                  cmd=_py("export", experiment=experiment, variant=variant, seed=seed),
                  deps=(str(model), frozen, tgt) + code_deps("stages/export.py", "pipeline_lib/models/calibrator.py",
                                                             *code),
                  outs=(str(paths.deployed_model(experiment, variant, seed)),
                        str(paths.deployment_json(experiment, variant, seed))),
                  params=common + (cal,)),
        ]
    return stages


def _evaluate(params: Params, experiment: str, method: str, seed: int) -> Stage:
    exp = params.experiments[experiment]
    seg = params.backbones[exp.backbone].task == "segmentation"
    variant = paths.CALIBRATOR_VARIANTS.get(method)
    frozen = (str(paths.calibrator_frozen_model(params, experiment, variant, seed)),) if variant else ()
    calibrator_code = ("pipeline_lib/models/calibrator.py",) if variant else ()
    return Stage(
        name=f"evaluate__{experiment}__{method}__s{seed}",
        cmd=_py("evaluate", experiment=experiment, method=method, seed=seed),
        deps=(str(paths.method_model(params, experiment, method, seed)), *frozen, *_data_deps(params, experiment))
        + code_deps("stages/evaluate.py", "pipeline_lib/evaluation.py", "pipeline_lib/metrics.py",
                    *model_code(params, exp.backbone), *calibrator_code),
        outs=(str(paths.metrics_json(experiment, method, seed)),)
        + ((str(paths.predictions_preview(experiment, method, seed)),) if seg else ()),
        params=("profile", "device", "threads_per_job", f"{params.track(exp.backbone).prefix}evaluate",
                f"experiments.{experiment}", f"backbones.{exp.backbone}") + _data_keys(params, experiment),
    )


def _label_bound(params: Params, experiment: str) -> Stage:
    exp = params.experiments[experiment]
    return Stage(
        name=f"label_bound__{experiment}", cmd=_py("label_bound", experiment=experiment),
        deps=_data_deps(params, experiment)
        + code_deps("stages/label_bound.py", "pipeline_lib/metrics.py", *model_code(params, exp.backbone)),
        outs=(str(paths.label_bound_json(experiment)),),
        params=(f"experiments.{experiment}",) + (("data",) if _streamed(params, exp.source) else ()))


def _report(params: Params, experiment: str) -> Stage:
    exp, seeds = params.experiments[experiment], params.experiment_seeds(experiment)
    seg = params.backbones[exp.backbone].task == "segmentation"
    models = [m for m in exp.methods if m != "label_bound"]
    pngs = tuple(str(paths.confusion_png(experiment, m)) for m in models) + (str(paths.curves_png(experiment)),)
    previews: tuple[str, ...] = ()
    if seg:
        pngs += (str(paths.predictions_png(experiment)),)
        previews = tuple(str(paths.predictions_preview(experiment, m, seeds[0])) for m in models)
    if "label_bound" in exp.methods:
        previews += (str(paths.label_bound_json(experiment)),)
    previews += tuple(str(paths.deployment_json(experiment, variant, s)) for method, variant
                      in paths.CALIBRATOR_VARIANTS.items() if method in exp.methods for s in seeds)
    pngs += (str(paths.tradeoff_png(experiment)),)
    csv = str(paths.report_csv(experiment))
    curves = tuple(str(csv) for *_, csv in paths.curve_histories(params, experiment))
    return Stage(
        name=f"report__{experiment}",
        cmd=_py("report", experiment=experiment),
        deps=tuple(str(paths.metrics_json(experiment, m, s)) for m in models for s in seeds) + curves
        + previews
        + code_deps("stages/report.py", "pipeline_lib/report.py", "pipeline_lib/paper_numbers.py",
                    "pipeline_lib/metrics.py", "pipeline_lib/plots.py"),
        outs=(csv,) + pngs,
        params=("profile", "seeds", f"experiments.{experiment}"),
        report_outs=(csv,) + pngs,
        report_category=experiment,
    )


def experiment_stages(params: Params, experiment: str) -> list[Stage]:
    """Every stage the report of ``experiment`` needs, dependencies first."""
    exp, seeds = params.experiments[experiment], params.experiment_seeds(experiment)
    domains: list[str] = []
    for d in (exp.source, exp.target):
        for needed in [*domain_inputs(d, params), d]:
            if needed not in domains:
                domains.append(needed)
    stages = [_prepare(d, params) for d in domains]
    needs_source_model = set(exp.methods) - {"oracle"}
    if needs_source_model:
        stages += [_train_supervised(params, exp.source, exp.backbone, s) for s in seeds]
    if "oracle" in exp.methods:
        stages += [_train_supervised(params, exp.target, exp.backbone, s) for s in seeds]
    for s in seeds:
        stages += _cycada(params, experiment, s)
        stages += _gam(params, experiment, s)
        stages += _calibrator(params, experiment, s)
    stages += [_evaluate(params, experiment, m, s) for m in exp.methods if m != "label_bound" for s in seeds]
    if "label_bound" in exp.methods:
        stages.append(_label_bound(params, experiment))
    stages.append(_report(params, experiment))
    return stages


def build_stages(params: Params, experiments: tuple[str, ...] | None = None) -> list[Stage]:
    """Stages for the given experiments (default: all), each once, dependencies first."""
    seen: dict[str, Stage] = {}
    for name in experiments if experiments is not None else tuple(params.experiments):
        for stage in experiment_stages(params, name):
            seen.setdefault(stage.name, stage)
    return list(seen.values())


def dvc_yaml_text(params: Params) -> str:
    stages = {
        st.name: {"cmd": st.cmd, "deps": list(st.deps), "params": list(st.params), "outs": list(st.outs)}
        for st in build_stages(params, params.dvc_experiments)
    }
    return DVC_HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120)


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
    text = dvc_yaml_text(load_params(args.params))
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
