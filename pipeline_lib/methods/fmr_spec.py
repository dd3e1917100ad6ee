"""Feature-map regression ("Semi-supervised domain adaptation by feature-map regression", the paper in
``shared/papers/feature-map-regression.txt``), on a paired experiment: the target is the source through a
shift (``data.shifted.<name>.base`` = the source), so item i of one is item i of the other.

Stages per seed: ``regress_features`` (3.1: one post-pooling layer ``pool<k>``, or all of them with W_inc or
W_dec) and ``finetune`` (baseline B2: H1 finetuned on D2 with labels). The other baselines are rows of the
supervised method: B0 is ``source_only`` (H1 on D2), B1 ``oracle`` (trained from scratch on D2's labels).
Per experiment: ``invert_features`` (3.3, the grid of images as H1 and H2 see them; first seed).
Algorithm: :mod:`pipeline_lib.methods.fmr`; params: :mod:`pipeline_lib.methods.fmr_params`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.config import Params
from pipeline_lib.methods.fmr_params import COMBINED, MAX_LAYERS
from pipeline_lib.registry import Curve, Experiment, Extras, Method, Model, Plan, Row, StageSpec, monitor_curves

POOL_ROWS = tuple(f"fmr_pool{k}" for k in range(1, MAX_LAYERS + 1))
#: rows -> the ``regress_features`` variant that makes them
VARIANTS = {**{row: row.removeprefix("fmr_") for row in POOL_ROWS}, "fmr_inc": "inc", "fmr_dec": "dec"}
SELECTION = "last epoch; no D2 labels (pairs with D1 only)"
FIGURES = "Feature-map regression"  # the report's subcategory of the method's figures


# ---- artifacts --------------------------------------------------------------------------------

def fmr_model(experiment: str, variant: str, seed: int) -> Path:
    """H2 of a regression variant (pool<k>, inc, dec), or B2's finetuned model (``finetune``)."""
    return Path("models/fmr") / experiment / f"seed{seed}" / f"{variant}.pt"


def inversion_png(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"fmr_inversion_seed{seed}.png"


# ---- the experiment ---------------------------------------------------------------------------

def paired(exp: Experiment) -> bool:
    """Whether the experiment's target is its source through a shift (exact pairs)."""
    shifted = exp.params.data.shifted.get(exp.target)
    return shifted is not None and shifted.base == exp.source


def layers(exp: Experiment) -> tuple[str, ...]:
    """The backbone's post-pooling layers, in forward order (``fmr.layers.<backbone>``)."""
    return exp.section("fmr").layers.get(exp.backbone, ())


def layers_key(exp: Experiment) -> str:
    return exp.key(f"fmr.layers.{exp.backbone}")


def _applies(row: str):
    def check(exp: Experiment) -> bool:
        if not paired(exp):
            return False
        return not row.startswith("fmr_pool") or int(row.removeprefix("fmr_pool")) <= len(layers(exp))
    return check


def inversion_variant(exp: Experiment) -> str:
    """The H2 the inversion grid shows (``fmr.inversion.variant``; deepest: the deepest single layer)."""
    chosen = exp.section("fmr").inversion.variant
    return f"pool{len(layers(exp))}" if chosen == "deepest" else chosen


# ---- stages -----------------------------------------------------------------------------------

def _regress_keys(exp: Experiment, variant: str) -> tuple[str, ...]:
    """The ``regress`` keys a variant reads: a single layer has no use for ``weights_inc``."""
    fields = type(exp.section("fmr").regress).model_fields
    return tuple(f"{exp.key('fmr.regress')}.{f}" for f in fields if variant in COMBINED or f != "weights_inc")


def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    h1 = str(exp.source_model(seed))
    stages: list[StageSpec] = []
    for row, variant in VARIANTS.items():
        if not exp.wants(row):
            continue
        model = fmr_model(exp.name, variant, seed)
        csv, label = paths.history(model), ROWS[row].label
        stages.append(StageSpec(
            name=f"regress_features__{exp.name}__{variant}__s{seed}", module="regress_features",
            args=(("experiment", exp.name), ("variant", variant), ("seed", seed)), deps=(h1, *exp.data),
            outs=(str(model), str(csv)), series=str(model),
            params=exp.train_keys + _regress_keys(exp, variant) + (layers_key(exp), exp.key("evaluate")),
            domains=(exp.source, exp.target), backbone=exp.backbone,
            curves=(Curve(f"{label}: regression loss", f"seed {seed}", "loss", str(csv)),
                    *monitor_curves(exp, label, seed, csv))))
    if exp.wants("finetune"):
        model = fmr_model(exp.name, "finetune", seed)
        stages.append(StageSpec(
            name=f"finetune__{exp.name}__s{seed}", module="finetune",
            args=(("experiment", exp.name), ("seed", seed)), deps=(h1, exp.data[1]),
            outs=(str(model), str(paths.history(model))), params=exp.train_keys + (exp.key("fmr.finetune"),),
            domains=(exp.target,), backbone=exp.backbone))
    return stages


def _experiment_stages(exp: Experiment) -> list[StageSpec]:
    if not any(exp.wants(row) for row in VARIANTS):
        return []
    seed, variant = exp.seeds[0], inversion_variant(exp)
    png = inversion_png(exp.name, seed)
    return [StageSpec(
        name=f"invert_features__{exp.name}", module="invert_features", args=(("experiment", exp.name),),
        deps=(str(exp.source_model(seed)), str(fmr_model(exp.name, variant, seed)), *exp.data), outs=(str(png),),
        params=exp.keys + (exp.key("fmr.inversion"), layers_key(exp), f"experiments.{exp.name}.seeds", "seeds"),
        domains=(exp.source, exp.target), backbone=exp.backbone,
        figures=(exp.figure(png, "fmr_inversion", FIGURES, figure="feature inversion", model=variant, seed=seed),))]


def _check(params: Params, experiment: str) -> str | None:
    exp = Experiment(params, experiment)
    wanted = [row for row in (*VARIANTS, "finetune") if row in exp.rows]
    if not wanted:
        return None
    if not paired(exp):
        return (f"{wanted[0]} needs pairs: set the target to a data.shifted domain whose base is the source "
                f"({exp.source})")
    if wanted != ["finetune"]:
        n = len(layers(exp))
        if not n:
            return f"{wanted[0]} needs {layers_key(exp)} (the backbone's post-pooling layers, in order)"
        too_deep = [row for row in wanted if row.startswith("fmr_pool") and int(row.removeprefix("fmr_pool")) > n]
        if too_deep:
            return f"{too_deep[0]}: {layers_key(exp)} has {n} layer(s)"
        variant = inversion_variant(exp)
        if variant not in VARIANTS.values() or (variant.startswith("pool") and int(variant[4:]) > n):
            return (f"{exp.key('fmr.inversion.variant')}: {variant!r} is not a regression variant of this backbone "
                    f"(pool1..pool{n}, inc, dec or deepest)")
        if f"fmr_{variant}" not in exp.rows:
            return f"{exp.key('fmr.inversion.variant')}: {variant} is not among the experiment's rows (fmr_{variant})"
    if "source_only" not in exp.rows:
        return "feature-map regression rows need source_only (baseline B0, and the distortion of section 4.1)"
    return None


# ---- rows -------------------------------------------------------------------------------------

def distortion(exp: Experiment) -> float:
    """Section 4.1's image distortion between D1 and D2, from H1 (B0) on both test sets, mean over seeds:
    1/2 (|acc1 - acc2| / acc1 + |mIoU1 - mIoU2| / mIoU1) for segmentation (acc: mean class accuracy);
    |acc1 - acc2| / acc1 for digits (no mIoU)."""
    from pipeline_lib.artifacts import read_json  # the report's job; the DAG never calls this
    values = []
    for seed in exp.row_seeds("source_only"):
        m = read_json(paths.metrics_json(exp.name, "source_only", seed))
        s, t = m["source"], m["target"]
        if exp.task == "segmentation":
            values.append(0.5 * (abs(s["class_acc"] - t["class_acc"]) / s["class_acc"]
                                 + abs(s["miou"] - t["miou"]) / s["miou"]))
        else:
            values.append(abs(s["accuracy"] - t["accuracy"]) / s["accuracy"])
    return sum(values) / len(values)


def _columns(exp: Experiment) -> dict[str, object]:
    spec = exp.params.data.shifted[exp.target]
    return {"shift": f"{spec.shift}, strength {spec.strength:g}, seed {spec.seed}",
            "distortion_pct": round(100 * distortion(exp), 1)}


def _b0_metrics(exp: Experiment) -> tuple[Path, ...]:
    return tuple(paths.metrics_json(exp.name, "source_only", s) for s in exp.row_seeds("source_only"))


def _regression_inputs(exp: Experiment) -> tuple[Path, ...]:
    """What the report reads for a regression row: B0's metrics (the distortion) and the inversion grid (so that
    building the report builds the grid)."""
    return _b0_metrics(exp) + (inversion_png(exp.name, exp.seeds[0]),)


def _row(row: str) -> Row:
    variant = VARIANTS[row]
    label = {"inc": "FMR all post-pool layers (W_inc)", "dec": "FMR all post-pool layers (W_dec)"}.get(
        variant, f"FMR {variant} only")
    return Row(row, label, SELECTION, model=Model(lambda exp, seed: fmr_model(exp.name, variant, seed), series=True),
               plan=Plan(by_default=_applies(row)), extras=Extras(inputs=_regression_inputs, columns=_columns))


ROWS = {
    **{row: _row(row) for row in VARIANTS},
    "finetune": Row(
        "finetune", "B2: H1 finetuned on D2 labels", "last epoch; trained on target labels (baseline B2)",
        uses_target_labels=True, reference=True, model=Model(lambda exp, seed: fmr_model(exp.name, "finetune", seed)),
        plan=Plan(by_default=paired), extras=Extras(inputs=_b0_metrics, columns=_columns)),
}

METHOD = Method(name="fmr", paper="Feature-map regression (semi-supervised domain adaptation on paired data)",
                order=50, rows=tuple(ROWS.values()), seed_stages=_seed_stages, experiment_stages=_experiment_stages,
                check=_check)
