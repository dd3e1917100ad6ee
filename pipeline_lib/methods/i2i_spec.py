"""I2IAdapt (Murez et al., "Image to Image Translation for Domain Adaptation", CVPR 2018).

Stages per seed and named lambda set: ``train_i2i`` (the whole framework, eq. 7, with the set's terms; a
report row ``i2i_<set>`` each, Table 2's ablation lines and Table 1's special cases). Per experiment:
``i2i_embedding`` (Fig. 3: a 2-D embedding of source and target codes for no adaptation, translation
without the feature critic, and the full model; first seed). Algorithm: :mod:`pipeline_lib.methods.i2i`;
networks: :mod:`pipeline_lib.models.i2i`; params: :mod:`pipeline_lib.methods.i2i_params`.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.config import BackboneParams, Params
from pipeline_lib.methods.i2i_params import DEFAULT_SETS, I2IParams
from pipeline_lib.registry import Curve, Experiment, Extras, Method, Model, Plan, Row, StageSpec

FIGURES = "I2IAdapt"  # the report's subcategory of the method's figures
SELECTION = "last epoch; the paper's lambdas and Adam settings; no target labels read"
LOADER = "pipeline_lib.models.i2i:load_i2i_model"
#: fields of the section no ``train_i2i`` stage reads (the sets: only its own; the embedding stage's)
EMBEDDING_FIELDS = ("embedding_points", "embedding_sets", "embedding_method")
NOT_TRAINING = ("sets", "default_sets", "n_seeds", *EMBEDDING_FIELDS)


def train_fields(cfg: I2IParams) -> tuple[str, ...]:
    """The section's fields a ``train_i2i`` stage reads besides its own set (segmentation adds crop, flip)."""
    return tuple(f for f in type(cfg).model_fields if f not in NOT_TRAINING)


def input_update(cfg: I2IParams, backbone: BackboneParams) -> dict:
    """The backbone settings the paper's input preparation changes (digits: side and channels)."""
    if backbone.task != "classification":
        return {}
    return {"size": cfg.size or backbone.size, "channels": 1 if cfg.grey else backbone.channels}


def init_problem(cfg: I2IParams, backbone: BackboneParams, key: str, name: str) -> str | None:
    """Why ``init: source_only`` cannot load the source model into this input preparation (one line), or None."""
    if cfg.init != "source_only" or all(v == getattr(backbone, k) for k, v in input_update(cfg, backbone).items()):
        return None
    return (f"{key}.init: source_only starts from the {name} source model, which reads {backbone.size}x{backbone.size} "
            f"images of {backbone.channels} channel(s): set {key}.size: null and grey: "
            f"{str(backbone.channels == 1).lower()}, or init: scratch")


def _check(params: Params, name: str) -> str | None:
    exp = Experiment(params, name)
    return init_problem(exp.section("i2i"), params.backbones[exp.backbone], exp.key("i2i"), exp.backbone)


def settings(cfg: I2IParams, set_name: str) -> str:
    """The run's choices where the paper is silent or this project departs from it (a report column)."""
    notes = ["encoder and classifier from " + ("the source-only model" if cfg.init == "source_only" else "scratch")]
    if cfg.weights(set_name)["z"]:
        notes.append("Q_z through target codes only (section 4)" if cfg.z_routing == "target" else
                     "Q_z through both domains' codes (not the paper's routing; docs/i2i.md)")
    return "; ".join(notes)


def row_name(set_name: str) -> str:
    return f"i2i_{set_name}"


# ---- artifacts --------------------------------------------------------------------------------

def i2i_model(experiment: str, set_name: str, seed: int) -> Path:
    return Path("models/i2i") / experiment / f"seed{seed}" / f"{set_name}.pt"


def translation_png(experiment: str, set_name: str, seed: int) -> Path:
    return Path("reports") / experiment / f"i2i_translation_{set_name}_seed{seed}.png"


def embedding_png(experiment: str, seed: int) -> Path:
    return Path("reports") / experiment / f"i2i_embedding_seed{seed}.png"


# ---- stages -----------------------------------------------------------------------------------

def _keys(exp: Experiment, fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{exp.key('i2i')}.{f}" for f in fields)


def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    cfg: I2IParams = exp.section("i2i")
    stages: list[StageSpec] = []
    for set_name in cfg.sets:
        row = row_name(set_name)
        if not exp.wants(row) or seed not in exp.row_seeds(row):
            continue
        model, png = i2i_model(exp.name, set_name, seed), translation_png(exp.name, set_name, seed)
        csv, label = paths.history(model), ROWS[row].label
        on = {t for t, w in cfg.weights(set_name).items() if w > 0}
        curves = tuple(Curve(f"{label}: {name}", f"seed {seed}", f"loss_{t}" if t != "z" else "w_d_z", str(csv))
                       for t, name in (("c", "Q_c (source cross-entropy)"), ("trc", "Q_trc (translated source)"),
                                       ("z", "d_z's Wasserstein estimate")) if t in on)
        curves += (Curve("target test accuracy per epoch (monitoring only, never used to select)",
                         f"{label}, seed {seed}", "target_metric", str(csv)),)
        stages.append(StageSpec(
            name=f"train_i2i__{exp.name}__{set_name}__s{seed}", module="train_i2i",
            args=(("experiment", exp.name), ("set", set_name), ("seed", seed)),
            deps=(*exp.data, *((str(exp.source_model(seed)),) if cfg.init == "source_only" else ())),
            outs=(str(model), str(csv), str(png)), series=str(model),
            params=exp.train_keys + _keys(exp, train_fields(cfg)) + (f"{exp.key('i2i')}.sets.{set_name}",
                                                               exp.key("evaluate")),
            domains=(exp.source, exp.target), backbone=exp.backbone, curves=curves,
            # a set without decoders shows its test inputs only, so every set has the picture
            figures=(exp.figure(png, "i2i_translation", FIGURES, figure="translations", lambdas=set_name,
                                seed=seed),)))
    return stages


def reported_sets(exp: Experiment) -> tuple[str, ...]:
    """The lambda sets whose rows the experiment reports (as ``exp.rows`` has them), found from params and this
    method's rows alone: the embedding stage that asks loads no other method's declaration."""
    listed = exp.settings.methods

    def reported(row: Row) -> bool:
        return row.name in listed if listed is not None else exp.task in row.tasks and row.plan.by_default(exp)
    return tuple(s for s in DEFAULT_SETS if reported(ROWS[row_name(s)]))


def embedding_sets(exp: Experiment) -> tuple[str, ...]:
    """Fig. 3's sets that the experiment reports."""
    cfg: I2IParams = exp.section("i2i")
    shown = reported_sets(exp)
    return tuple(s for s in cfg.embedding_sets if s in cfg.sets and s in shown)


def _experiment_stages(exp: Experiment) -> list[StageSpec]:
    shown = embedding_sets(exp)
    if not shown:
        return []
    seed = exp.seeds[0]
    png = str(embedding_png(exp.name, seed))
    return [StageSpec(
        name=f"i2i_embedding__{exp.name}__s{seed}", module="i2i_embedding",
        args=(("experiment", exp.name), ("seed", seed)),
        deps=tuple(str(i2i_model(exp.name, s, seed)) for s in shown) + exp.data, outs=(png,),
        params=exp.keys + _keys(exp, EMBEDDING_FIELDS) + tuple(f"{exp.key('i2i')}.sets.{s}" for s in shown),
        domains=(exp.source, exp.target), backbone=exp.backbone,
        figures=(exp.figure(png, "i2i_embedding", FIGURES, figure="code embedding (Fig. 3)", lambdas=", ".join(shown),
                            seed=seed),))]


# ---- rows -------------------------------------------------------------------------------------

_LABELS = {
    "none": "I2I no adaptation (c, augmentation)",
    "z": "I2I c+z (Table 1: ADDA / FCNs in the wild)",
    "idy": "I2I c+id_Y (Table 1: DRCN)",
    "idy_trc": "I2I c+id_Y+trc",
    "z_idy": "I2I c+z+id_Y",
    "z_idy_trc": "I2I c+z+id_Y+trc",
    "z_tr_idx_idy_trc": "I2I c+z+tr+id_X+id_Y+trc",
    "all": "I2I all losses",
    "cyclegan": "I2I tr+cyc (Table 1: CycleGAN; trc trains h on its translations)",
}
def _by_default(set_name: str):
    def chosen(exp: Experiment) -> bool:
        wanted = exp.section("i2i").default_sets
        return wanted is None or set_name in wanted
    return chosen


def _embedding(set_name: str):
    """The report waits for Fig. 3's embedding (a stage nothing else reads) through the rows it shows."""
    def inputs(exp: Experiment) -> tuple[Path, ...]:
        return (embedding_png(exp.name, exp.seeds[0]),) if set_name in embedding_sets(exp) else ()
    return inputs


def _from_source(exp: Experiment) -> bool:
    return exp.section("i2i").init == "source_only"


ROWS = {row_name(s): Row(row_name(s), _LABELS[s], SELECTION,
                         model=Model(lambda exp, seed, s=s: i2i_model(exp.name, s, seed), LOADER, series=True),
                         plan=Plan(needs_source_model=_from_source, seeds_from="i2i", by_default=_by_default(s)),
                         extras=Extras(inputs=_embedding(s)))
        for s in DEFAULT_SETS}

METHOD = Method(name="i2i", paper="Murez et al., Image to Image Translation for Domain Adaptation, CVPR 2018",
                order=40, rows=tuple(ROWS.values()), seed_stages=_seed_stages, experiment_stages=_experiment_stages,
                check=_check)
