"""Typed, validated parameters: ``params.yaml`` is the single source for both runners.

Any value may be given per profile as a mapping with exactly the keys ``tiny``, ``demo``
and ``paper``; :func:`resolve_profile` picks the active one before validation, so stages
only ever see plain values. Unknown or mistyped keys are errors, never silently ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
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
EMBEDDED_SCENE_DOMAINS = ("scenes_game", "scenes_photo")
REAL_SCENE_DOMAINS = ("gta5", "cityscapes", "synthia")
SCENE_DOMAINS = EMBEDDED_SCENE_DOMAINS + REAL_SCENE_DOMAINS
#: domains read from user-supplied folders (data.roots), streamed or converted by `prepare`
REAL_DOMAINS = REAL_DIGIT_DOMAINS + REAL_SCENE_DOMAINS
METHODS = ("source_only", "cycada_pixel", "cycada_feat", "cycada_pixel_feat", "gam_gaussian", "adda_reg",
           "gam_noreg", "gam", "calibrator", "cycada_calibrator", "oracle", "label_bound")
#: rows that only make sense for one task (GAM 5.3's label-distribution bound is about pixel counts)
SEGMENTATION_ONLY = ("label_bound",)
Task = Literal["classification", "segmentation"]
DriftReduction = Literal["tensor_mean", "sum"]
ARCH_TASK: dict[str, Task] = {"lenet": "classification", "lraspp_mobilenet_v3": "segmentation",
                              "fcn8s_vgg16": "segmentation", "drn26": "segmentation", "erfnet": "segmentation",
                              "erfnet_encoder": "segmentation"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderDomainParams(_Strict):
    """A user's own segmentation domain: ``<root>/images/*`` + ``<root>/labels/*.png`` paired by stem."""

    root: Path
    classes: tuple[str, ...] = Field(min_length=1, description="class names, in train-id order")
    ids: tuple[int, ...] | None = Field(None, description="label-PNG value of each class (default 0..n-1)")
    ignore_id: int = Field(255, ge=0, description="label-PNG value that is not scored")
    test_fraction: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _ids_match(self) -> "FolderDomainParams":
        if self.ids is not None and len(self.ids) != len(self.classes):
            raise ValueError(f"ids lists {len(self.ids)} values for {len(self.classes)} classes")
        return self


class DerivedDomainParams(_Strict):
    """A digit domain whose training split keeps only ``keep`` of the images of ``classes``
    (GAM Table 2: "odd removes half of the odd digits"); the test split is unchanged."""

    base: str
    classes: tuple[int, ...] = Field(min_length=1)
    keep: float = Field(ge=0, lt=1)

    @field_validator("base")
    @classmethod
    def _digits(cls, base: str) -> str:
        if base not in DIGIT_DOMAINS:
            raise ValueError(f"base {base!r} must be a digit domain ({', '.join(DIGIT_DOMAINS)})")
        return base


class DataParams(_Strict):
    roots: dict[str, Path] = Field(default_factory=dict)
    folders: dict[str, FolderDomainParams] = Field(default_factory=dict)
    derived: dict[str, DerivedDomainParams] = Field(default_factory=dict)
    download: bool = False
    cache_dir: Path = Path("data/cache")

    @field_validator("roots")
    @classmethod
    def _known_roots(cls, roots: dict[str, Path]) -> dict[str, Path]:
        unknown = sorted(set(roots) - set(REAL_DOMAINS))
        if unknown:
            raise ValueError(f"unknown dataset {unknown[0]!r} (known: {', '.join(REAL_DOMAINS)})")
        return roots

    @field_validator("folders", "derived")
    @classmethod
    def _new_names(cls, domains: dict[str, Any]) -> dict[str, Any]:
        for name in domains:
            if name in DIGIT_DOMAINS + SCENE_DOMAINS:
                raise ValueError(f"domain {name!r} clashes with a built-in domain; rename it")
        return domains


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


class ScenesParams(_Strict):
    """Procedural street scenes (both renderers share these)."""

    n_train: int = Field(gt=0)
    n_test: int = Field(gt=0)
    height: int = Field(128, ge=32)
    width: int = Field(256, ge=32)


class HeldOutParams(_Strict):
    """A dataset without an official test split keeps its last frames (sorted by name) as the test split."""

    test_frames: int = Field(500, gt=0)


class PrepareParams(_Strict):
    seed: int = 0
    mnist5k: Mnist5kParams = Mnist5kParams()
    syndigits: SynDigitsParams
    mnistm: MnistmParams = MnistmParams()
    optdigits: OptdigitsParams = OptdigitsParams()
    real: SubsetParams = SubsetParams()
    scenes: ScenesParams = ScenesParams(n_train=600, n_test=200)
    gta5: HeldOutParams = HeldOutParams()
    synthia: HeldOutParams = HeldOutParams()


class BackboneParams(_Strict):
    """``lenet`` (digits) or a segmentation net; segmentation nets take 3-channel images of any size."""

    arch: Literal["lenet", "lraspp_mobilenet_v3", "fcn8s_vgg16", "drn26", "erfnet", "erfnet_encoder"]
    channels: Literal[1, 3] = 3
    size: int | None = Field(None, ge=16, description="input side of a classification net")
    pretrained: bool = Field(False, description="start from ImageNet weights (downloaded once; needs network)")
    gam_layers: tuple[str, ...] = Field((), description="named layers GAM matches, in forward order")

    @property
    def task(self) -> Task:
        return ARCH_TASK[self.arch]

    @model_validator(mode="after")
    def _size_for_classifiers(self) -> "BackboneParams":
        if self.task == "classification" and self.size is None:
            raise ValueError(f"arch {self.arch} needs size (the input side in pixels)")
        if self.task == "segmentation" and self.channels != 3:
            raise ValueError(f"arch {self.arch} takes colour images: set channels: 3")
        return self


class ExperimentParams(_Strict):
    source: str
    target: str
    backbone: str
    methods: tuple[str, ...] = Field(METHODS, description="report rows (default: every method of the track)")
    seeds: tuple[int, ...] | None = Field(None, min_length=1, description="overrides the top-level seeds")

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

    @field_validator("semantic_loss", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false


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
    drift_reduction: DriftReduction = "tensor_mean"
    checkpoint_every: int = Field(1, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (CyCADA segmentation: 0.99)")
    lambda_encoder: float = Field(1.0, gt=0, description="weight of the encoder's GAN loss (segmentation: 0.1)")
    layer: str = Field("encoder", description="layer the discriminator sees: encoder (the backbone's "
                       "encoder layer), logits (the CyCADA release's score maps) or any named layer")


class CycadaParams(_Strict):
    cyclegan: CycleGANParams
    translate: TranslateParams = TranslateParams()
    train_task: TrainSupervisedParams
    adapt_features: AdaptFeaturesParams


class EvaluateParams(_Strict):
    batch_size: int = Field(512, gt=0)


class GaussianMatchParams(_Strict):
    """GAM section 4.1: statistics over ``max_batches`` batches (null: the whole training split)."""

    batch_size: int = Field(256, gt=0)
    max_batches: int | None = Field(None, gt=0)


class MatchActivationsParams(_Strict):
    """GAM section 4.2, eq. 3: weight_reg * ||theta_s - theta_t||^2 + lambda_gan * sum_i w_i GAN_i."""

    init: Literal["gaussian", "source"] = Field("gaussian", description="start from the Gaussian-matched net")
    layer_weights: tuple[float, ...] | None = Field(None, description="w_i per matched layer (null: all 1)")
    lambda_gan: float = Field(1.0, gt=0)
    weight_reg: float = Field(0.5, ge=0, description="GAM full; the gam_noreg row sets it to 0")
    drift_reduction: DriftReduction = Field("tensor_mean", description="tensor_mean: the authors' release "
                                            "(mean squared difference per parameter tensor, summed); sum: "
                                            "the literal squared norm. The 'ADDA + regulariser' row uses the same")
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    disc_lr: float | None = Field(None, gt=0, description="discriminators' lr (null: lr)")
    momentum: float = Field(0.9, ge=0, lt=1)
    beta1: float = Field(0.5, ge=0, lt=1)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="iterations per epoch (null: one pass over "
                                        "the source split; the paper: 20,000 iterations in all)")
    disc_pretrain_steps: int = Field(0, ge=0, description="discriminator-only iterations first (digits: 500)")
    progressive: bool = Field(False, description="switch on one layer's GAN at a time, deepest first")
    progressive_steps: int = Field(1000, gt=0)
    disc_hidden: int = Field(500, gt=0)
    disc_layers: int = Field(3, ge=2)
    num_workers: int = Field(0, ge=0)
    checkpoint_every: int = Field(1, gt=0)



class GamParams(_Strict):
    gaussian_match: GaussianMatchParams = GaussianMatchParams()
    match_activations: MatchActivationsParams
    adda_weight_reg: float = Field(1.0, gt=0, description="the weight regulariser of the 'ADDA + weight "
                                   "regulariser' row (ADDA itself is CyCADA's feature-level stage)")


class CalibratorParams(_Strict):
    """Light-weight calibrator (Ye et al. 3.2, 4): G_c = I + G'_c against a frozen source model, trained
    to make calibrated source (G3) and calibrated target (G4) look like source (G1) to a 4-way feature
    discriminator on M_s features and a 4-way pixel discriminator on shuffled random patches."""

    ngf: int = Field(16, gt=0, description="width of G'_c (digits 16 ~ 0.19M parameters, the paper's 0.18M)")
    n_down: int = Field(2, ge=1, le=4)
    n_blocks: int = Field(2, ge=0)
    linf: float = Field(0.1, gt=0, le=1, description="L-infinity bound of the perturbation, in units of the [0, 1] "
                        "pixel range (the paper's best segmentation setting: 0.01)")
    layer: str = Field("encoder", description="the M_s layer the feature discriminator sees (encoder, logits or "
                       "any named layer)")
    patch: int = Field(16, gt=0, description="side of the random patches the pixel discriminator sees (their "
                       "pixels are shuffled)")
    disc_hidden: int = Field(500, gt=0, description="both discriminators: two fully connected layers")
    lambda_feat: float = Field(1.0, ge=0)
    lambda_pixel: float = Field(1.0, ge=0)
    lr: float = Field(1e-4, gt=0, description="Adam, for the calibrator and both discriminators")
    beta1: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(128, gt=0, description="images per domain per step")
    epochs: int = Field(10, gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="null: one pass over the source split")
    checkpoint_every: int = Field(1, gt=0)
    num_workers: int = Field(0, ge=0)
    fourier_images: int = Field(64, gt=0, description="target test images behind the Fourier plot (section 5.1)")

    @model_validator(mode="after")
    def _has_a_discriminator(self) -> "CalibratorParams":
        if self.lambda_feat == 0 and self.lambda_pixel == 0:
            raise ValueError("calibrator: lambda_feat and lambda_pixel are both 0, so nothing trains the calibrator")
        return self


class FrameParams(_Strict):
    """How a segmentation stage reads frames: frames wider than ``max_width`` are scaled down to it
    (aspect kept; the paper: 1024), then randomly cropped to ``crop`` = [height, width] (training
    only; padded with ignored pixels where a frame is smaller); ``num_workers`` DataLoader workers."""

    max_width: int | None = Field(None, ge=32)
    crop: tuple[int, int] | None = None
    num_workers: int = Field(0, ge=0)


class SegTrainParams(TrainSupervisedParams, FrameParams):
    max_steps_per_epoch: int | None = Field(None, gt=0)
    flip: bool = Field(True, description="random horizontal flips")


class SegCycleGANParams(CycleGANParams, FrameParams):
    """The paper: frames scaled to width 1024, random 400x400 crops, no semantic loss (memory)."""


class SegTranslateParams(TranslateParams):
    max_width: int | None = Field(None, ge=32, description="scale wider frames down to this width (paper: 1024)")
    num_workers: int = Field(0, ge=0)


class SegAdaptParams(AdaptFeaturesParams, FrameParams):
    """CyCADA 6.1.2: SGD momentum 0.99, lr 1e-5, encoder loss x0.1, 1 + 1 crops of 768, gate over 100 iterations."""


class SegCycadaParams(_Strict):
    cyclegan: SegCycleGANParams
    translate: SegTranslateParams = SegTranslateParams()
    train_task: SegTrainParams
    adapt_features: SegAdaptParams


class SegEvaluateParams(_Strict):
    """Frames wider than ``infer_max_width`` are inferred scaled down to it (the Cityscapes protocol of
    the papers' code: 1024, i.e. 1024x512) and their logits upsampled to the label's full resolution
    (2048x1024) before scoring; null infers every frame at full resolution."""

    batch_size: int = Field(4, gt=0)
    infer_max_width: int | None = Field(None, ge=32)
    num_workers: int = Field(0, ge=0)
    preview_frames: int = Field(4, ge=1, description="target frames shown in the report's prediction grid")


class SegMatchActivationsParams(MatchActivationsParams, FrameParams):
    """GAM 5.3: LSGAN, lambda 0.1, batch 12 random 1024x512 crops, Adam, doubled weight regulariser."""


class SegGamParams(GamParams):
    match_activations: SegMatchActivationsParams


class SegCalibratorParams(CalibratorParams, FrameParams):
    """Ye et al. 4: batch 6 on DRN-26, Adam 1e-4, L-infinity 0.01."""


class SegmentationParams(_Strict):
    """The segmentation track's versions of train_supervised, cycada, gam and evaluate."""

    train_supervised: SegTrainParams
    cycada: SegCycadaParams
    gam: SegGamParams
    calibrator: SegCalibratorParams = SegCalibratorParams(batch_size=6, linf=0.01, patch=64)
    evaluate: SegEvaluateParams = SegEvaluateParams()


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
    gam: GamParams
    calibrator: CalibratorParams = CalibratorParams()
    evaluate: EvaluateParams = EvaluateParams()
    segmentation: SegmentationParams | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_methods(cls, raw: Any) -> Any:
        """An experiment without ``methods`` gets every row its track supports."""
        if not isinstance(raw, dict) or not isinstance(raw.get("experiments"), dict):
            return raw
        archs = {k: v.get("arch") for k, v in (raw.get("backbones") or {}).items() if isinstance(v, dict)}
        for exp in raw["experiments"].values():
            if isinstance(exp, dict) and "methods" not in exp:
                seg = ARCH_TASK.get(str(archs.get(exp.get("backbone"))), "classification") == "segmentation"
                exp["methods"] = list(METHODS if seg else [m for m in METHODS if m not in SEGMENTATION_ONLY])
        return raw

    def track(self, backbone: str) -> "Track":
        """The train_supervised / cycada / evaluate sections that apply to ``backbone``'s task."""
        task = self.backbones[backbone].task
        if task == "classification":
            return Track(task, "", self.train_supervised, self.cycada, self.gam, self.calibrator, self.evaluate)
        assert self.segmentation is not None  # validated in _cross_references
        seg = self.segmentation
        return Track(task, "segmentation.", seg.train_supervised, seg.cycada, seg.gam, seg.calibrator,
                     seg.evaluate)

    def experiment_seeds(self, experiment: str) -> tuple[int, ...]:
        return self.experiments[experiment].seeds or self.seeds

    def domain_task(self, domain: str) -> Task:
        return "classification" if domain in DIGIT_DOMAINS or domain in self.data.derived else "segmentation"

    def known_domains(self) -> tuple[str, ...]:
        return DIGIT_DOMAINS + SCENE_DOMAINS + tuple(self.data.folders) + tuple(self.data.derived)

    @model_validator(mode="after")
    def _cross_references(self) -> "Params":
        for name, exp in self.experiments.items():
            if exp.backbone not in self.backbones:
                raise ValueError(
                    f"experiments.{name}.backbone: unknown backbone {exp.backbone!r} "
                    f"(defined: {', '.join(self.backbones)})"
                )
            task = self.backbones[exp.backbone].task
            for role in ("source", "target"):
                domain = getattr(exp, role)
                if domain not in self.known_domains():
                    raise ValueError(f"experiments.{name}.{role}: unknown domain {domain!r} "
                                     f"(known: {', '.join(self.known_domains())})")
                if self.domain_task(domain) != task:
                    raise ValueError(f"experiments.{name}: {role} {domain!r} is a {self.domain_task(domain)} "
                                     f"domain but backbone {exp.backbone!r} is a {task} net")
            if task == "classification" and set(SEGMENTATION_ONLY) & set(exp.methods):
                raise ValueError(f"experiments.{name}.methods: label_bound is for segmentation experiments")
            gam_rows = {"gam_gaussian", "gam_noreg", "gam"} & set(exp.methods)
            bb = self.backbones[exp.backbone]
            if gam_rows and not bb.gam_layers:
                raise ValueError(f"experiments.{name}: GAM rows need backbones.{exp.backbone}.gam_layers "
                                 "(the named layers to match)")
            if task == "segmentation" and self.segmentation is None:
                raise ValueError(f"experiments.{name} is a segmentation experiment: add the `segmentation:` "
                                 "section (see params.yaml in the repository)")
        for name in self.dvc_experiments:
            if name not in self.experiments:
                raise ValueError(
                    f"dvc_experiments: unknown experiment {name!r} (defined: {', '.join(self.experiments)})"
                )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicates in {list(self.seeds)}")
        return self


@dataclass(frozen=True)
class Track:
    """One task's sections; ``prefix`` is where they live in params.yaml ("" or "segmentation.")."""

    task: Task
    prefix: str
    train_supervised: TrainSupervisedParams
    cycada: CycadaParams | SegCycadaParams
    gam: GamParams | SegGamParams
    calibrator: CalibratorParams | SegCalibratorParams
    evaluate: EvaluateParams | SegEvaluateParams


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
