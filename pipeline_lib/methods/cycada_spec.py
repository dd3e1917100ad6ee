"""CyCADA (Hoffman et al., "CyCADA: Cycle-Consistent Adversarial Domain Adaptation", ICML 2018).

Stages per seed: ``train_cyclegan`` (pixel level, with the semantic-consistency loss) ->
``translate`` (the source training set through G_S->T, sharded) -> ``train_task`` (the task net on
translated source: "pixel only") -> ``adapt_features`` (ADDA on raw source: "feat only", or on
translated source: "pixel+feat"; its stage builder is shared, :mod:`pipeline_lib.methods.adda_stage`). Algorithms:
:mod:`pipeline_lib.methods.cycada` and :mod:`pipeline_lib.methods.adda`; params:
:mod:`pipeline_lib.methods.cycada_params`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.methods.adda_stage import ADDA_SELECTION, adapt_features_stage, adapted_model, cycada_dir
from pipeline_lib.registry import Curve, Experiment, Extras, Method, Model, Row, StageSpec

#: feature-level rows -> the ``adapt_features`` variant that makes them
FEATURE_VARIANTS = {"cycada_feat": "feat", "cycada_pixel_feat": "pixel_feat"}
#: ``cycada_pixel`` and the rows that build on the pixel-only model and the translated set
PIXEL_ROW = "cycada_pixel"

CYCLEGAN_CURVES = (("loss_gan", "GAN loss (G)"), ("loss_cyc", "cycle loss"), ("loss_sem", "semantic loss"),
                   ("loss_d", "discriminator loss"))
FIGURES = "CyCADA"  # the report's subcategory of the method's figures


# ---- artifacts --------------------------------------------------------------------------------

def cyclegan_model(experiment: str, seed: int) -> Path:
    return cycada_dir(experiment, seed) / "cyclegan.pt"


def translated_dataset(experiment: str, seed: int) -> Path:
    """Directory: ``shard-NNNNN.images.npy`` / ``shard-NNNNN.labels.npy`` pairs + ``manifest.json``."""
    return Path("data/translated") / experiment / f"seed{seed}"


def translation_grid(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"translation_seed{seed}.png"


def content_check_json(experiment: str, seed: int) -> Path:
    """The frozen source model's metric on the first source frames before and after translation."""
    return Path("metrics") / experiment / "content_check" / f"seed{seed}.json"


def pixel_model(experiment: str, seed: int) -> Path:
    return cycada_dir(experiment, seed) / "pixel.pt"


# ---- stages -----------------------------------------------------------------------------------

def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    src, tgt = exp.data
    f_s = str(exp.source_model(seed))
    cyclegan, translated = cyclegan_model(exp.name, seed), translated_dataset(exp.name, seed)
    pixel, grid = pixel_model(exp.name, seed), translation_grid(exp.name, seed)
    check = content_check_json(exp.name, seed)
    stages: list[StageSpec] = []
    if exp.wants(PIXEL_ROW, "cycada_pixel_feat"):
        run = (("experiment", exp.name), ("seed", seed))
        csv = paths.history(cyclegan)
        stages += [
            StageSpec(name=f"train_cyclegan__{exp.name}__s{seed}", module="train_cyclegan", args=run,
                      deps=(src, tgt, f_s), outs=(str(cyclegan), str(csv)),
                      params=exp.train_keys + (exp.key("cycada.cyclegan"),), domains=(exp.source, exp.target),
                      backbone=exp.backbone,
                      curves=tuple(Curve(f"CycleGAN {name}", f"seed {seed}", col, str(csv))
                                   for col, name in CYCLEGAN_CURVES)),
            StageSpec(name=f"translate__{exp.name}__s{seed}", module="translate", args=run,
                      deps=(str(cyclegan), src, f_s), outs=(str(translated), str(grid), str(check)),
                      metrics=(str(check),),
                      params=exp.keys + (exp.key("cycada.cyclegan"), exp.key("cycada.translate")),
                      domains=(exp.source,), backbone=exp.backbone, dir_outs=(str(translated),),
                      figures=(exp.figure(grid, "cyclegan_translation", FIGURES, figure="CycleGAN translations",
                                          seed=seed),)),
            StageSpec(name=f"train_task__{exp.name}__s{seed}", module="train_task", args=run,
                      deps=(str(translated), f_s), outs=(str(pixel), str(paths.history(pixel))), series=str(pixel),
                      params=exp.train_keys + (exp.key("cycada.train_task"),), backbone=exp.backbone),
        ]
    for row, variant in FEATURE_VARIANTS.items():
        if exp.wants(row):
            start = (f_s, src) if variant == "feat" else (str(pixel), str(translated))
            stages.append(adapt_features_stage(exp, ROWS[row].label, variant, seed, start))
    return stages


# ---- rows -------------------------------------------------------------------------------------

def _content_checks(exp: Experiment) -> tuple[Path, ...]:
    """The pixel-only row's content-check records, one per seed (read by the report)."""
    return tuple(content_check_json(exp.name, s) for s in exp.row_seeds(PIXEL_ROW))


def _content_columns(exp: Experiment) -> dict[str, object]:
    """The translation's content check (``translate``'s record, mean over seeds): the frozen source model's metric
    on source frames before and after translation, and a flag where translation lost over a third of it."""
    from pipeline_lib.artifacts import read_json  # the report's job; the DAG never calls this
    checks = [read_json(path) for path in _content_checks(exp)]
    before = 100 * sum(c["source"] for c in checks) / len(checks)
    after = 100 * sum(c["translated"] for c in checks) / len(checks)
    flagged = [str(c["seed"]) for c in checks if c["flagged"]]
    return {"content_check": f"source model on source {before:.1f} -> translated {after:.1f} ({checks[0]['metric']}, "
                             f"first {checks[0]['frames']} frames)",
            "content_flag": (f"translation kept under {checks[0]['kept_min']:.0%} of the source model's "
                             f"{checks[0]['metric']} (seeds {' '.join(flagged)})") if flagged else ""}


ROWS = {
    "cycada_pixel": Row(
        "cycada_pixel", "CyCADA pixel only", "last epoch; no target labels",
        model=Model(lambda exp, seed: pixel_model(exp.name, seed), series=True),
        extras=Extras(inputs=_content_checks, columns=_content_columns)),
    "cycada_feat": Row(
        "cycada_feat", "CyCADA feat only (ADDA)", ADDA_SELECTION,
        model=Model(lambda exp, seed: adapted_model(exp.name, "feat", seed), series=True)),
    "cycada_pixel_feat": Row(
        "cycada_pixel_feat", "CyCADA pixel+feat", ADDA_SELECTION,
        model=Model(lambda exp, seed: adapted_model(exp.name, "pixel_feat", seed), series=True)),
}

METHOD = Method(name="cycada", paper="Hoffman et al., CyCADA, ICML 2018", order=10, rows=tuple(ROWS.values()),
                seed_stages=_seed_stages)
