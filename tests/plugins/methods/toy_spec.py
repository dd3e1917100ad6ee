"""The toy plugin's declaration: one row, ``toy``, and its one stage per seed, ``toy_scale``."""

from __future__ import annotations

from pathlib import Path

from pipeline_lib.registry import Experiment, Method, Model, Row, StageSpec


def toy_model(experiment: str, seed: int) -> Path:
    return Path("models/toy") / experiment / f"seed{seed}.pt"


def _seed_stages(exp: Experiment, seed: int) -> list[StageSpec]:
    if not exp.wants("toy"):
        return []
    return [StageSpec(
        name=f"toy_scale__{exp.name}__s{seed}", module="toy_scale", args=(("experiment", exp.name), ("seed", seed)),
        deps=(str(exp.source_model(seed)),), outs=(str(toy_model(exp.name, seed)),),
        params=exp.keys + (exp.key("toy"),), backbone=exp.backbone)]


METHOD = Method(
    name="toy", paper="a toy plugin method (tests/plugins): the source model, logits scaled", order=90,
    rows=(Row("toy", "toy plugin (scaled logits)", "no selection: one closed-form step", tasks=("classification",),
              model=Model(lambda exp, seed: toy_model(exp.name, seed))),),
    seed_stages=_seed_stages)
