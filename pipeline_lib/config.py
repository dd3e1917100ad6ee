"""Typed, validated parameters: ``params.yaml`` is the single source for both runners.

Any value may be given per profile as a mapping with exactly the keys ``tiny``, ``demo``
and ``paper``; :func:`resolve_profile` picks the active one before validation, so stages
only ever see plain values. Unknown or mistyped keys are errors, never silently ignored.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline_lib.errors import PipelineError

PROFILES = ("tiny", "demo", "paper")
Profile = Literal["tiny", "demo", "paper"]
EMBEDDED_DIGIT_DOMAINS = ("mnist5k", "syndigits", "mnistm", "optdigits")
REAL_DIGIT_DOMAINS = ("mnist", "usps", "svhn")
DIGIT_DOMAINS = EMBEDDED_DIGIT_DOMAINS + REAL_DIGIT_DOMAINS
METHODS = ("source_only", "cycada_pixel", "cycada_feat", "cycada_pixel_feat", "oracle")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Strict):
    roots: dict[str, Path] = Field(default_factory=dict)
    download: bool = False
    cache_dir: Path = Path("data/cache")

    @field_validator("roots")
    @classmethod
    def _known_roots(cls, roots: dict[str, Path]) -> dict[str, Path]:
        unknown = sorted(set(roots) - set(REAL_DIGIT_DOMAINS))
        if unknown:
            raise ValueError(f"unknown dataset {unknown[0]!r} (known: {', '.join(REAL_DIGIT_DOMAINS)})")
        return roots


class Mnist5kParams(_Strict):
    test_fraction: float = Field(0.2, gt=0, lt=1)


class SynDigitsParams(_Strict):
    n_train: int = Field(gt=0)
    n_test: int = Field(gt=0)
    size: int = Field(32, ge=16)


class MnistmParams(_Strict):
    digits: Literal["mnist5k", "mnist"] = "mnist5k"


class OptdigitsParams(_Strict):
    test_fraction: float = Field(0.2, gt=0, lt=1)
    size: int = Field(28, ge=8)


class SubsetParams(_Strict):
    """Cap a real domain's splits (tiny profile, quick checks); null keeps everything."""

    max_train: int | None = Field(None, gt=0)
    max_test: int | None = Field(None, gt=0)


class PrepareParams(_Strict):
    seed: int = 0
    mnist5k: Mnist5kParams = Mnist5kParams()
    syndigits: SynDigitsParams
    mnistm: MnistmParams = MnistmParams()
    optdigits: OptdigitsParams = OptdigitsParams()
    real: SubsetParams = SubsetParams()


class BackboneParams(_Strict):
    arch: Literal["lenet"]
    channels: Literal[1, 3]
    size: int = Field(ge=16)


class ExperimentParams(_Strict):
    source: str
    target: str
    backbone: str
    methods: tuple[str, ...] = METHODS

    @field_validator("source", "target")
    @classmethod
    def _known_domain(cls, name: str) -> str:
        if name not in DIGIT_DOMAINS:
            raise ValueError(f"unknown domain {name!r} (known: {', '.join(DIGIT_DOMAINS)})")
        return name

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        for m in methods:
            if m not in METHODS:
                raise ValueError(f"unknown method {m!r} (known: {', '.join(METHODS)})")
        return methods


class TrainSupervisedParams(_Strict):
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    checkpoint_every: int = Field(1, gt=0, description="epochs between resumable checkpoints")


class GeneratorParams(_Strict):
    ngf: int = Field(gt=0)
    n_down: int = Field(2, ge=0)
    n_blocks: int = Field(2, ge=0)
    norm: Literal["instance", "batch"] = "instance"


class ImageDiscriminatorParams(_Strict):
    ndf: int = Field(gt=0)
    n_layers: int = Field(6, ge=2)
    norm: Literal["instance", "batch"] = "instance"


class CycleGANParams(_Strict):
    """Pixel-level adaptation (CyCADA section 3, appendix 6.1.1)."""

    generator: GeneratorParams
    discriminator: ImageDiscriminatorParams
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    lambda_gan: float = Field(1.0, ge=0)
    lambda_cycle: float = Field(1.0, ge=0)
    lambda_semantic: float = Field(1.0, ge=0)
    lambda_identity: float = Field(0.0, ge=0)
    semantic_loss: Literal["frozen", "joint", "off"] = "frozen"
    joint_ce_threshold: float = Field(1.0, gt=0)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    max_steps_per_epoch: int | None = Field(None, gt=0)
    pool_size: int = Field(50, ge=0)
    checkpoint_every: int = Field(1, gt=0)


class TranslateParams(_Strict):
    batch_size: int = Field(256, gt=0)
    shard_size: int = Field(20000, gt=0, description="images per shard file of a translated dataset")
    grid_samples: int = Field(8, gt=0)


class AdaptFeaturesParams(_Strict):
    """Feature-level adversarial adaptation (ADDA as in CyCADA appendix 6.1)."""

    lr: float = Field(gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    batch_size: int = Field(gt=0)
    max_epochs: int = Field(gt=0)
    max_steps_per_epoch: int | None = Field(None, gt=0)
    gate_accuracy: float = Field(0.6, ge=0, le=1)
    gate_window: int = Field(1, gt=0, description="batches the discriminator accuracy is averaged over")
    disc_hidden: int = Field(500, gt=0)
    disc_layers: int = Field(3, ge=2)
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    weight_reg: float = Field(0.0, ge=0, description="weight of ||theta_t - theta_s||^2 (GAM's regulariser)")
    checkpoint_every: int = Field(1, gt=0)


class CycadaParams(_Strict):
    cyclegan: CycleGANParams
    translate: TranslateParams = TranslateParams()
    train_task: TrainSupervisedParams
    adapt_features: AdaptFeaturesParams


class EvaluateParams(_Strict):
    batch_size: int = Field(512, gt=0)


class Params(_Strict):
    profile: Profile
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seeds: tuple[int, ...] = Field(min_length=1)
    threads_per_job: int = Field(1, gt=0)
    data: DataParams = DataParams()
    prepare: PrepareParams
    backbones: dict[str, BackboneParams]
    experiments: dict[str, ExperimentParams]
    dvc_experiments: tuple[str, ...] = Field(min_length=1)
    train_supervised: TrainSupervisedParams
    cycada: CycadaParams
    evaluate: EvaluateParams = EvaluateParams()

    @model_validator(mode="after")
    def _cross_references(self) -> "Params":
        for name, exp in self.experiments.items():
            if exp.backbone not in self.backbones:
                raise ValueError(
                    f"experiments.{name}.backbone: unknown backbone {exp.backbone!r} "
                    f"(defined: {', '.join(self.backbones)})"
                )
        for name in self.dvc_experiments:
            if name not in self.experiments:
                raise ValueError(
                    f"dvc_experiments: unknown experiment {name!r} (defined: {', '.join(self.experiments)})"
                )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicates in {list(self.seeds)}")
        return self


def resolve_profile(raw: Any, profile: str, where: str = "") -> Any:
    """Replace every ``{tiny: a, demo: b, paper: c}`` mapping by the active profile's value."""
    if isinstance(raw, dict):
        keys = set(raw)
        if keys and keys <= set(PROFILES):
            missing = [p for p in PROFILES if p not in keys]
            if missing:
                raise PipelineError(
                    f"params.yaml: {where or 'value'} is given per profile but lacks {', '.join(missing)}: "
                    f"give all of {', '.join(PROFILES)} or a single value"
                )
            return resolve_profile(raw[profile], profile, where)
        return {k: resolve_profile(v, profile, f"{where}.{k}" if where else str(k)) for k, v in raw.items()}
    if isinstance(raw, list):
        return [resolve_profile(v, profile, f"{where}[{i}]") for i, v in enumerate(raw)]
    return raw


def _format_validation_error(err: ValidationError, source: str) -> str:
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")  # typos first
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        parent = first["loc"][:-1]
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and e["loc"][:-1] == parent]
        close = difflib.get_close_matches(str(first["loc"][-1]), missing, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "check its spelling against params.yaml's documented keys"
        msg = f"unknown key ({hint})"
    elif first["type"] == "missing":
        msg = "required key is missing"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    where = f"{loc}: " if loc else ""
    return f"{source}: {where}{msg}{more}"


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a loaded params mapping; raise a one-line :class:`PipelineError` on problems."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise PipelineError(f"{source}: profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    resolved = resolve_profile(raw, profile)
    try:
        return Params.model_validate(resolved)
    except ValidationError as err:
        raise PipelineError(_format_validation_error(err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run from the project root (where params.yaml lives)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise PipelineError(f"{path}: not valid YAML{line}: fix the syntax") from None
    return parse_params(raw, str(path))
