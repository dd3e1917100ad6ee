"""GAM (Huang, Huang and Krähenbühl, "Domain transfer through deep activation matching", ECCV 2018).

Stages per seed: ``gaussian_match`` (4.1, closed form) -> ``match_activations`` (4.2, with the
weight-drift regulariser: "full", or without: "noreg"); "ADDA + weight regulariser" is CyCADA's
``adapt_features`` stage with the regulariser on. Per experiment: ``label_bound`` (5.3, the
label-distribution oracle bound, segmentation only). Algorithm: :mod:`pipeline_lib.methods.gam`;
params: :mod:`pipeline_lib.methods.gam_params`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.config import Params
from pipeline_lib.methods.adda_stage import ADDA_SELECTION, adapt_features_stage, adapted_model
from pipeline_lib.registry import Curve, Experiment, Extras, Method, Model, Plan, Row, StageSpec, monitor_curves

FIGURES = "GAM"  # the report's subcategory of the method's figures
LAST = "last epoch; no target labels (the digits demo's epochs set on syndigits -> mnist5k)"
#: rows -> the checkpoint variant that holds them
ADDA_REG_VARIANT = "feat_reg"  # the adapt_features variant of the "ADDA + weight regulariser" row
#: the ``match_activations`` variants and their rows
MATCH_VARIANTS = {"gam": "full", "gam_noreg": "noreg"}


# ---- artifacts --------------------------------------------------------------------------------

def gam_model(experiment: str, variant: str, seed: int) -> Path:
    """GAM's checkpoints: gaussian (4.1), full / noreg (4.2). ADDA + the regulariser is CyCADA's
    ``adapt_features`` stage (variant ``feat_reg``), stored where that stage stores every variant."""
    return Path("models/gam") / experiment / f"seed{seed}" / f"{variant}.pt"


def source_or_not_png(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"source_or_not_seed{seed}.png"


def label_bound_json(experiment: str) -> Path:
    """GAM 5.3's label-distribution bound (no model, no seed)."""
    return Path("metrics") / experiment / "label_bound.json"


def layers_key(exp: Experiment) -> str:
    """The params key of the layers GAM matches on this experiment's backbone."""
    return exp.key(f"gam.layers.{exp.backbone}")


# ---- stages -----------------------------------------------------------------------------------

def _drift_curve(label: str, seed: int, csv: Path) -> Curve:
    return Curve(f"{label}: weight drift ||theta_s - theta_t||^2", f"seed {seed}", "drift", str(csv))


def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    f_s = str(exp.source_model(seed))
    init = exp.section("gam").match_activations.init
    gaussian, picture = gam_model(exp.name, "gaussian", seed), source_or_not_png(exp.name, seed)
    stages: list[StageSpec] = []
    if exp.wants("gam_gaussian") or (exp.wants(*MATCH_VARIANTS) and init == "gaussian"):
        stages.append(StageSpec(
            name=f"gaussian_match__{exp.name}__s{seed}", module="gaussian_match",
            args=(("experiment", exp.name), ("seed", seed)), deps=(f_s, *exp.data),
            outs=(str(gaussian), str(picture)), params=exp.keys + (exp.key("gam.gaussian_match"), layers_key(exp)),
            domains=(exp.source, exp.target), backbone=exp.backbone,
            figures=(exp.figure(picture, "source_or_not", FIGURES, figure="Source or not (Fig. 3)", seed=seed),)))
    for row, variant in MATCH_VARIANTS.items():
        if not exp.wants(row):
            continue
        model = gam_model(exp.name, variant, seed)
        csv, label = paths.history(model), ROWS[row].label
        curves = (Curve(f"{label}: discriminator accuracy", f"seed {seed}", "acc_d", str(csv)),
                  *monitor_curves(exp, label, seed, csv)) + ((_drift_curve(label, seed, csv),) if row == "gam" else ())
        stages.append(StageSpec(
            name=f"match_activations__{exp.name}__{variant}__s{seed}", module="match_activations",
            args=(("experiment", exp.name), ("variant", variant), ("seed", seed)),
            deps=((str(gaussian),) if init == "gaussian" else ()) + (f_s, *exp.data),
            outs=(str(model), str(csv)), series=str(model),
            params=exp.train_keys + (exp.key("gam.match_activations"), layers_key(exp), exp.key("evaluate")),
            domains=(exp.source, exp.target), backbone=exp.backbone, curves=curves))
    if exp.wants("adda_reg"):
        model = adapted_model(exp.name, ADDA_REG_VARIANT, seed)
        stages.append(adapt_features_stage(
            exp, ROWS["adda_reg"].label, ADDA_REG_VARIANT, seed, (f_s, exp.data[0]),
            extra_keys=(exp.key("gam.adda_weight_reg"), exp.key("gam.match_activations.drift_reduction")),
            extra_curves=(_drift_curve(ROWS["adda_reg"].label, seed, paths.history(model)),)))
    return stages


def _experiment_stages(exp: Experiment) -> list[StageSpec]:
    if not exp.wants("label_bound"):
        return []
    return [StageSpec(
        name=f"label_bound__{exp.name}", module="label_bound", args=(("experiment", exp.name),),
        deps=exp.data, outs=(str(label_bound_json(exp.name)),),
        params=(f"experiments.{exp.name}.source", f"experiments.{exp.name}.target",
                f"experiments.{exp.name}.backbone", exp.key("evaluate")),
        domains=(exp.source, exp.target))]


def _check(params: Params, experiment: str) -> str | None:
    exp = Experiment(params, experiment)
    if exp.wants("gam_gaussian", "gam_noreg", "gam") and not exp.section("gam").layers.get(exp.backbone):
        return f"GAM rows need {layers_key(exp)} (the named layers to match)"
    return None


# ---- rows -------------------------------------------------------------------------------------

def _label_bound_summary(exp: Experiment) -> dict[str, object]:
    from pipeline_lib.artifacts import read_json  # the report's job; the DAG never calls this
    bound = read_json(label_bound_json(exp.name))
    row: dict[str, object] = {
        "metric": "mIoU %", "target_miou": f"{100 * bound['miou']:.1f}",
        "target_pixel_acc": f"{100 * bound['pixel_acc']:.1f}", "target_class_acc": f"{100 * bound['class_acc']:.1f}",
        "target_mean": round(100 * bound["miou"], 2)}
    for pos, cls in enumerate(bound["eval_classes"]):
        iou = bound["iou"][pos]
        row[f"iou_{bound['classes'][cls]}"] = None if iou is None else round(100 * iou, 1)
    return row


def _checkpoint(variant: str):
    return lambda exp, seed: gam_model(exp.name, variant, seed)


ROWS = {
    "gam_gaussian": Row("gam_gaussian", "GAM i.i.d. Gaussian matching", "closed form; no target labels",
                        model=Model(_checkpoint("gaussian"))),
    "adda_reg": Row("adda_reg", "ADDA + weight regulariser", ADDA_SELECTION,
                    model=Model(lambda exp, seed: adapted_model(exp.name, ADDA_REG_VARIANT, seed), series=True)),
    "gam_noreg": Row("gam_noreg", "GAM, no regulariser", LAST, model=Model(_checkpoint("noreg"), series=True)),
    "gam": Row("gam", "GAM full", LAST, model=Model(_checkpoint("full"), series=True)),
    "label_bound": Row(
        "label_bound", "label-distribution oracle bound",
        "no model: best scores of any model that follows the source label distribution (GAM 5.3), from "
        "source-train and target-test pixel counts", uses_target_labels=True, tasks=("segmentation",),
        reference=True, plan=Plan(needs_source_model=False),
        extras=Extras(inputs=lambda exp: (label_bound_json(exp.name),), summary=_label_bound_summary)),
}

METHOD = Method(name="gam", paper="Huang et al., Domain transfer through deep activation matching, ECCV 2018",
                order=20, rows=tuple(ROWS.values()), seed_stages=_seed_stages, experiment_stages=_experiment_stages,
                check=_check)
