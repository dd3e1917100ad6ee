"""Supervised training on one domain's labels: the source-only model every method starts from, and
the target oracle (the upper bound every paper reports). Stage: ``stages/train_supervised.py``."""

from __future__ import annotations

from pipeline_lib import paths
from pipeline_lib.registry import RUN_KEYS, TRAIN_KEYS, Experiment, Method, Model, Plan, Row, StageSpec, rows

LAST = "last epoch; no target labels"


def train_supervised(exp: Experiment, domain: str, seed: int) -> StageSpec:
    """Train the experiment's backbone on ``domain``'s labels (shared by every experiment that needs it)."""
    model = paths.supervised_model(domain, exp.backbone, seed)
    return StageSpec(
        name=f"train_supervised__{domain}__{exp.backbone}__s{seed}", module="train_supervised",
        args=(("domain", domain), ("backbone", exp.backbone), ("seed", seed)),
        deps=(exp.artifact(domain),), outs=(str(model), str(paths.history(model))),
        params=RUN_KEYS + TRAIN_KEYS + (exp.key("train_supervised"), f"backbones.{exp.backbone}"),
        domains=(domain,), backbone=exp.backbone)


def _stages(exp: Experiment) -> list[StageSpec]:
    out: list[StageSpec] = []
    if any(rows()[name].plan.uses_source_model(exp) for name in exp.rows):  # most methods start from it
        out += [train_supervised(exp, exp.source, s) for s in exp.seeds]
    if exp.wants("oracle"):
        out += [train_supervised(exp, exp.target, s) for s in exp.seeds]
    return out


ROWS = {
    "source_only": Row(
        "source_only", "source only", LAST, model=Model(lambda exp, seed: exp.source_model(seed))),
    "oracle": Row(
        "oracle", "target oracle", "trained on target labels (upper bound)", uses_target_labels=True,
        model=Model(lambda exp, seed: paths.supervised_model(exp.target, exp.backbone, seed)),
        reference=True, plan=Plan(needs_source_model=False)),
}

METHOD = Method(name="supervised", paper="supervised training on one domain (no adaptation)", order=0,
                rows=tuple(ROWS.values()), experiment_stages=_stages)
