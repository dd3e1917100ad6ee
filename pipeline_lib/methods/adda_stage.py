"""ADDA's stage, shared by the methods that run it: CyCADA's feature level ("feat only" on raw source, "pixel+feat"
on translated source) and GAM's "ADDA + weight regulariser" baseline. The algorithm is
:mod:`pipeline_lib.methods.adda`; its settings are CyCADA's ``cycada.adapt_features`` section (the schedule of
CyCADA's appendix 6.1), which every ADDA stage reads.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_lib import paths
from pipeline_lib.registry import Curve, Experiment, StageSpec, monitor_curves

#: the model selection of every ADDA row: the demo profile's epoch count was set on another pair (params.yaml)
ADDA_SELECTION = "last ADDA epoch; no target labels (the digits demo's epochs set on syndigits -> mnist5k)"


def cycada_dir(experiment: str, seed: int) -> Path:
    """CyCADA's checkpoints of an experiment's seed, the ADDA stage's among them."""
    return Path("models/cycada") / experiment / f"seed{seed}"


def adapted_model(experiment: str, variant: str, seed: int) -> Path:
    """The adapted model of ``adapt_features`` variant ``variant`` (feat, pixel_feat, feat_reg)."""
    return cycada_dir(experiment, seed) / f"{variant}.pt"


def adapt_features_stage(exp: Experiment, label: str, variant: str, seed: int, start: tuple[str, ...],
                         extra_keys: tuple[str, ...] = (), extra_curves: tuple[Curve, ...] = ()) -> StageSpec:
    """One ``adapt_features`` stage (ADDA) of the row labelled ``label``, from the model and data in ``start``."""
    out = adapted_model(exp.name, variant, seed)
    csv = paths.history(out)
    return StageSpec(
        name=f"adapt_features__{exp.name}__{variant}__s{seed}", module="adapt_features",
        args=(("experiment", exp.name), ("variant", variant), ("seed", seed)),
        deps=start + (exp.data[1],), outs=(str(out), str(csv)), series=str(out),
        params=exp.train_keys + (exp.key("cycada.adapt_features"), exp.key("evaluate")) + extra_keys,
        domains=(exp.source, exp.target), backbone=exp.backbone,
        curves=(Curve(f"{label}: discriminator accuracy", f"seed {seed}", "acc_d", str(csv)),
                *monitor_curves(exp, label, seed, csv), *extra_curves))
