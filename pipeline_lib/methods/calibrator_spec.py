"""The light-weight calibrator (Ye et al., "Light-weight Calibrator: a Separable Component for
Unsupervised Domain Adaptation", CVPR 2020).

Stages per seed and variant: ``train_calibrator`` (G_c = I + G'_c in front of a frozen model) ->
``export`` (calibrator + frozen model as one TorchScript file, checked against the two steps).
``raw`` calibrates the source-only model; ``cycada`` calibrates CyCADA's pixel-only model on its
translated source set (the paper's "CycleGAN + Ours"). Algorithm:
:mod:`pipeline_lib.methods.calibrator`; params: :mod:`pipeline_lib.methods.calibrator_params`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.methods.cycada_spec import PIXEL_ROW, pixel_model, translated_dataset
from pipeline_lib.registry import Curve, Experiment, Extras, Method, Model, Plan, Row, StageSpec, monitor_curves

#: rows -> variant (raw: the source-only model on raw source; cycada: CyCADA's pixel-only model)
VARIANTS = {"calibrator": "raw", "cycada_calibrator": "cycada"}
# said on every calibrator row: where its settings come from (no target label was read)
SELECTION = ("last epoch; the paper's lr; the digits L-inf bound and feature-discriminator input from the authors' "
             "release, the input chosen on syndigits -> mnist5k (the settings column names it); no target labels "
             "of a reported pair read")
CURVES = (("acc_d_feat", "feature discriminator, 4-way accuracy"),
          ("acc_d_pixel", "pixel discriminator, 4-way accuracy"),
          ("fooled", "calibrated images classified as source (G1)"))
LOADER = "pipeline_lib.models.calibrator:load_calibrated_model"
FIGURES = "Calibrator"  # the report's subcategory of the method's figures


# ---- artifacts --------------------------------------------------------------------------------

def calibrator_model(experiment: str, variant: str, seed: int) -> Path:
    """The calibrator's checkpoint (its frozen model is the source or pixel-only checkpoint)."""
    return Path("models/calibrator") / experiment / f"seed{seed}" / f"{variant}.pt"


def frozen_model(exp: Experiment, variant: str, seed: int) -> Path:
    return exp.source_model(seed) if variant == "raw" else pixel_model(exp.name, seed)


def deployed_model(experiment: str, variant: str, seed: int) -> Path:
    """``export``'s one TorchScript file: calibrator then frozen model."""
    return calibrator_model(experiment, variant, seed).with_suffix(".torchscript.pt")


def deployment_json(experiment: str, variant: str, seed: int) -> Path:
    """Parameter counts, file size and the export check, read by the report."""
    return calibrator_model(experiment, variant, seed).with_suffix(".deploy.json")


def fourier_png(experiment: str, variant: str, seed: int) -> Path:
    return Path("reports") / experiment / f"fourier_{variant}_seed{seed}.png"


# ---- stages -----------------------------------------------------------------------------------

def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    src, tgt = exp.data
    stages: list[StageSpec] = []
    for row, variant in VARIANTS.items():
        if not exp.wants(row):
            continue
        frozen = str(frozen_model(exp, variant, seed))
        source = src if variant == "raw" else str(translated_dataset(exp.name, seed))
        model, fourier = calibrator_model(exp.name, variant, seed), fourier_png(exp.name, variant, seed)
        csv, label = paths.history(model), ROWS[row].label
        run = (("experiment", exp.name), ("variant", variant), ("seed", seed))
        stages += [
            StageSpec(name=f"train_calibrator__{exp.name}__{variant}__s{seed}", module="train_calibrator", args=run,
                      deps=(frozen, source, tgt), outs=(str(model), str(csv), str(fourier)), series=str(model),
                      params=exp.train_keys + (exp.key("calibrator"), exp.key("evaluate")),
                      domains=(exp.source, exp.target), backbone=exp.backbone,
                      figures=(exp.figure(fourier, "fourier", FIGURES, figure="Fourier view (Fig. 6)",
                                          model=label, seed=seed),),
                      curves=tuple(Curve(f"{label}: {name}", f"seed {seed}", col, str(csv)) for col, name in CURVES)
                      + monitor_curves(exp, label, seed, csv)),
            StageSpec(name=f"export__{exp.name}__{variant}__s{seed}", module="export", args=run,
                      deps=(str(model), frozen, tgt),
                      outs=(str(deployed_model(exp.name, variant, seed)),
                            str(deployment_json(exp.name, variant, seed))),
                      params=exp.keys + (exp.key("calibrator"),), domains=(exp.target,), backbone=exp.backbone),
        ]
    return stages


# ---- rows -------------------------------------------------------------------------------------

def _deployment_columns(variant: str):
    """The calibrator's size beside the frozen model's (Ye et al. 5.3), from ``export``'s record."""
    def columns(exp: Experiment) -> dict[str, object]:
        from pipeline_lib.artifacts import read_json  # the report's job; the DAG never calls this
        deployed = read_json(deployment_json(exp.name, variant, exp.seeds[0]))
        return {"calibrator_params": deployed["calibrator_parameters"], "model_params": deployed["model_parameters"],
                "calibrator_share_pct": round(100 * deployed["ratio"], 2)}
    return columns


def _row(name: str, label: str, variant: str, requires: tuple[str, ...] = ()) -> Row:
    return Row(name, label, SELECTION,
               model=Model(lambda exp, seed: calibrator_model(exp.name, variant, seed), LOADER,
                           inputs=lambda exp, seed: (frozen_model(exp, variant, seed),), series=True),
               plan=Plan(requires=requires),
               extras=Extras(inputs=lambda exp: tuple(deployment_json(exp.name, variant, s) for s in exp.seeds),
                             columns=_deployment_columns(variant)))


ROWS = {
    "calibrator": _row("calibrator", "light-weight calibrator (frozen source model)", "raw"),
    "cycada_calibrator": _row("cycada_calibrator", "CycleGAN + calibrator (frozen pixel-only model)", "cycada",
                              requires=(PIXEL_ROW,)),
}

METHOD = Method(name="calibrator", paper="Ye et al., Light-weight Calibrator, CVPR 2020", order=30,
                rows=tuple(ROWS.values()), seed_stages=_seed_stages)
