"""Typed, validated parameters: ``params.yaml`` is the single source for both runners.

Any value may be given per profile as a mapping with the keys ``tiny``, ``demo`` and ``paper``,
and optionally ``full`` (the real-digits profile: the paper's value unless the mapping gives its own);
:func:`resolve_profile` picks the active one before validation, so stages only ever see plain values.
Unknown or mistyped keys are errors, never silently ignored.

A method's section (``cycada``, ``segmentation.gam``, ...) is validated by the pydantic classes of its
``pipeline_lib/methods/<name>_params.py``. :func:`load_params` validates the whole file (the DAG, the
Snakefile, ``dag --check``); a stage loads it with ``sections="lazy"``, which validates the shared sections
at once and a method's section when :meth:`Params.section` first reads it, so a stage imports the params
module of no method but those it reads (editing ``gam_params.py`` reruns GAM's stages only).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, field_validator,
                      model_validator)

from pipeline_lib import plugins
from pipeline_lib.errors import PipelineError

PROFILES = ("tiny", "demo", "full", "paper")
#: how GAM's weight-drift term (:func:`pipeline_lib.losses.weight_drift`) reduces, for the sections that use it
DriftReduction = Literal["tensor_mean", "sum"]
Profile = Literal["tiny", "demo", "full", "paper"]
REQUIRED_PROFILES = ("tiny", "demo", "paper")  # a per-profile mapping must give these
PROFILE_FALLBACK = {"full": "paper"}  # ...and a profile it leaves out takes this one's value
EMBEDDED_DIGIT_DOMAINS = ("mnist5k", "syndigits", "mnistm", "optdigits")
REAL_DIGIT_DOMAINS = ("mnist", "usps", "svhn")
DIGIT_DOMAINS = EMBEDDED_DIGIT_DOMAINS + REAL_DIGIT_DOMAINS
EMBEDDED_SCENE_DOMAINS = ("scenes_game", "scenes_photo")
REAL_SCENE_DOMAINS = ("gta5", "cityscapes", "synthia")
SCENE_DOMAINS = EMBEDDED_SCENE_DOMAINS + REAL_SCENE_DOMAINS
#: domains read from user-supplied folders (data.roots), streamed or converted by `prepare`
REAL_DOMAINS = REAL_DIGIT_DOMAINS + REAL_SCENE_DOMAINS
Task = Literal["classification", "segmentation"]
ARCH_TASK: dict[str, Task] = {"lenet": "classification", "resnet18": "classification", "resnet50": "classification",
                              "lraspp_mobilenet_v3": "segmentation",
                              "fcn8s_vgg16": "segmentation", "drn26": "segmentation", "erfnet": "segmentation",
                              "erfnet_encoder": "segmentation"}
#: the modules that build each architecture (a stage's code depends on its backbone's only)
ARCH_MODULES: dict[str, tuple[str, ...]] = {
    "lenet": ("pipeline_lib.models.lenet",),
    "resnet18": ("pipeline_lib.models.resnet",),
    "resnet50": ("pipeline_lib.models.resnet",),
    "lraspp_mobilenet_v3": ("pipeline_lib.models.segmenters",),
    "fcn8s_vgg16": ("pipeline_lib.models.segmenters", "pipeline_lib.models.fcn8s"),
    "drn26": ("pipeline_lib.models.segmenters", "pipeline_lib.models.drn"),
    "erfnet": ("pipeline_lib.models.segmenters", "pipeline_lib.models.erfnet"),
    "erfnet_encoder": ("pipeline_lib.models.segmenters", "pipeline_lib.models.erfnet"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FolderDomainParams(_Strict):
    """A user's own domain read from a folder, in one of two layouts (``layout``):

    - ``segmentation`` (the default): ``<root>/images/*`` + ``<root>/labels/*.png`` paired by stem, ``classes``
      (and optionally ``ids``, the label-PNG value of each) listed here; streamed from disk through an index;
    - ``classes``: one folder per class, ``<root>/<class>/*.jpg|png|...``, as torchvision's ``ImageFolder``
      (Office-31, Office-Home, VisDA, DomainNet). The class list is ``classes`` when given (train ids in that
      order; each must be a folder), else the sorted folder names. ``prepare`` decodes every image once (EXIF
      orientation applied, any mode to RGB), resizes its shorter side to ``size`` and crops the centre square,
      and stores the domain in memory like the digit sets; each backbone then resizes to its own input side.

    The train/test split is made once, by ``prepare``, with exactly one of three rules on the files sorted by
    name (class layout: within each class, so every class is in both splits):

    - ``test_fraction`` (the default, 0.2): the last fraction of the frames is the test split;
    - ``test_stems``: the frames whose file stems (names without extension) are listed;
    - ``test_glob``: the frames whose stems match a glob, e.g. ``seq07_*`` to hold out a whole sequence.

    Class layout: a stem or glob also matches ``<class>/<stem>`` (e.g. ``mug/frame_00*``). Giving ``test_stems``
    or ``test_glob`` replaces the fraction; give at most one of the three. A stem or glob that matches no frame,
    or a rule that leaves no training frame, stops ``prepare``.
    """

    root: Path
    layout: Literal["segmentation", "classes"] = Field("segmentation", description="images/ + labels/ (segmentation) "
                                                       "or one folder per class (classes)")
    classes: tuple[str, ...] | None = Field(None, min_length=1, description="class names, in train-id order "
                                            "(class layout: default the sorted folder names)")
    ids: tuple[int, ...] | None = Field(None, description="label-PNG value of each class (default 0..n-1)")
    ignore_id: int = Field(255, ge=0, description="label-PNG value that is not scored")
    size: int = Field(256, ge=8, description="class layout: the side images are stored at (shorter side resized "
                      "to it, centre crop); a backbone resizes again to its own size")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="hold out the last fraction of the frames sorted by "
                                 "file name (used unless test_stems or test_glob is given)")
    test_stems: tuple[str, ...] | None = Field(None, min_length=1, description="hold out exactly these frames "
                                               "(file stems, i.e. names without extension)")
    test_glob: str | None = Field(None, min_length=1, description="hold out the frames whose stems match this "
                                  "glob, e.g. 'seq07_*' for a whole sequence")

    @model_validator(mode="after")
    def _ids_match(self) -> "FolderDomainParams":
        if self.layout == "segmentation" and self.classes is None:
            raise ValueError("a segmentation folder lists its classes: add classes: [name, ...] in train-id order "
                             "(or set layout: classes for one folder per class)")
        if self.layout == "classes" and {"ids", "ignore_id"} & self.model_fields_set:
            raise ValueError("ids and ignore_id describe label PNGs; a class-per-folder domain takes its labels "
                             "from the folders: remove them")
        if self.ids is not None and self.classes is not None and len(self.ids) != len(self.classes):
            raise ValueError(f"ids lists {len(self.ids)} values for {len(self.classes)} classes")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError("classes lists a name twice; list each class once")
        rules = [k for k in ("test_fraction", "test_stems", "test_glob")
                 if k in self.model_fields_set and getattr(self, k) is not None]
        if len(rules) > 1:
            raise ValueError(f"{' and '.join(rules)} are given, but each chooses the test split on its own; "
                             "keep only one of them")
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


class ShiftedDomainParams(_Strict):
    """A paired copy of an in-memory domain: every image i of ``base`` (both splits) through one shift
    (``pipeline_lib/domains/shifts.py``), labels kept, masks moved with the pixels (feature-map regression 4.1)."""

    base: str
    shift: Literal["photocopy", "ripple", "cubism"]
    strength: float = Field(gt=0, le=1, description="0 < strength <= 1")
    seed: int = Field(0, ge=0, description="the shift's random draws (ripple phases, cubism tiles)")


#: a domain or experiment name becomes a file name, a part of job names joined by "__" and of DVC stage names (which
#: refuse every punctuation character but "_" and "-"): letters, digits, "_", "-" and spaces, from a letter or digit
_NAME = re.compile(r"(?!.*__)[^\W_][\w\- ]*")


def check_name(kind: str, name: str) -> None:
    """Refuse a name that cannot travel through the outputs' paths, the jobs' names and DVC's stage names. A space
    is fine: it is quoted wherever a name reaches a shell line."""
    if not _NAME.fullmatch(name) or name != name.strip():
        raise ValueError(f"{kind} name {name!r} cannot be used in file, job and DVC stage names: use letters, "
                         "digits, '_', '-' and inner spaces, starting with a letter or digit, with no '__'")


class DataParams(_Strict):
    roots: dict[str, Path] = Field(default_factory=dict)
    folders: dict[str, FolderDomainParams] = Field(default_factory=dict)
    derived: dict[str, DerivedDomainParams] = Field(default_factory=dict)
    shifted: dict[str, ShiftedDomainParams] = Field(default_factory=dict)
    download: bool = False
    cache_dir: Path = Path("data/cache")

    @field_validator("roots")
    @classmethod
    def _known_roots(cls, roots: dict[str, Path]) -> dict[str, Path]:
        unknown = sorted(set(roots) - set(REAL_DOMAINS))
        if unknown:
            raise ValueError(f"unknown dataset {unknown[0]!r} (known: {', '.join(REAL_DOMAINS)})")
        return roots

    @field_validator("folders", "derived", "shifted")
    @classmethod
    def _new_names(cls, domains: dict[str, Any]) -> dict[str, Any]:
        for name in domains:
            if name in DIGIT_DOMAINS + SCENE_DOMAINS:
                raise ValueError(f"domain {name!r} clashes with a built-in domain; rename it")
            check_name("domain", name)
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
    validate_frames: dict[str, bool] = Field(
        default_factory=dict, description="prepare decodes every image and label of a real street dataset (gta5, "
        "cityscapes, synthia) or data.folders domain with the readers training uses, and stops at the first bad file "
        "(unreadable, RGB label, label id outside the class list, image/label size mismatch); `<domain>: false` "
        "skips this for a dataset you trust (a bad file then stops training or evaluation instead); default true")
    validate_workers: int = Field(2, ge=0, description="DataLoader worker processes that decode frames while prepare "
                                  "validates a real or folder domain (0: in the stage's own process)")

    @field_validator("validate_frames")
    @classmethod
    def _streamed_domains_only(cls, flags: dict[str, bool]) -> dict[str, bool]:
        built = sorted(set(flags) & set(DIGIT_DOMAINS + EMBEDDED_SCENE_DOMAINS))
        if built:
            raise ValueError(f"{built[0]!r} has no dataset folder whose frames prepare could check: only real street "
                             f"datasets ({', '.join(REAL_SCENE_DOMAINS)}) and data.folders domains are validated; "
                             "remove it")
        return flags


class BackboneParams(_Strict):
    """``lenet`` (digits), ``resnet18``/``resnet50`` (torchvision; class-per-folder domains) or a segmentation
    net; segmentation nets take 3-channel images of any size."""

    arch: Literal["lenet", "resnet18", "resnet50", "lraspp_mobilenet_v3", "fcn8s_vgg16", "drn26", "erfnet",
                  "erfnet_encoder"]
    channels: Literal[1, 3] = 3
    size: int | None = Field(None, ge=16, description="input side of a classification net")
    pretrained: bool = Field(False, description="start from ImageNet weights (segmentation nets: downloaded once, "
                             "needs network; resnets: read from torch's hub cache, never downloaded)")
    weights: Path | None = Field(None, description="resnet18/resnet50: a local file of torchvision ImageNet weights "
                                 "(a state dict, e.g. resnet50-11ad3fa6.pth); overrides pretrained")

    @property
    def task(self) -> Task:
        return ARCH_TASK[self.arch]

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, raw: Any) -> Any:
        moved = [k for k in raw if isinstance(k, str) and k.endswith("_layers")] if isinstance(raw, dict) else []
        if moved:  # <method>_layers lived here before each method's section took its layers per backbone
            section = moved[0].removesuffix("_layers")
            raise ValueError(f"{moved[0]} moved to the method's own section: write it as {section}.layers.<backbone> "
                             f"(segmentation.{section}.layers.<backbone> for a segmentation net)")
        return raw

    @model_validator(mode="after")
    def _size_for_classifiers(self) -> "BackboneParams":
        if self.task == "classification" and self.size is None:
            raise ValueError(f"arch {self.arch} needs size (the input side in pixels)")
        if self.task == "segmentation" and self.channels != 3:
            raise ValueError(f"arch {self.arch} takes colour images: set channels: 3")
        if self.weights is not None and not self.arch.startswith("resnet"):
            raise ValueError(f"weights: a weights file is read for resnet18/resnet50, not {self.arch}; remove it "
                             "(pretrained: true starts a segmentation net from ImageNet)")
        return self


class ExperimentParams(_Strict):
    source: str
    target: str
    backbone: str
    methods: tuple[str, ...] | None = Field(None, min_length=1, description="report rows (null: every row of the "
                                            "track); the names are checked against the method registry")
    seeds: tuple[int, ...] | None = Field(None, min_length=1, description="overrides the top-level seeds")


class LoaderParams(_Strict):
    """What every data-reading section has on both tracks."""

    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    max_width: int | None = Field(None, ge=32, description="segmentation: frames wider than this are scaled down "
                                  "to it, aspect kept (the papers: 1024); digits are resized to the backbone's size")


class FrameParams(LoaderParams):
    """How a segmentation stage reads frames: frames wider than ``max_width`` are scaled down to it
    (aspect kept; the paper: 1024), then randomly cropped to ``crop`` = [height, width] (training
    only; padded with ignored pixels where a frame is smaller) and flipped (``flip``)."""

    crop: tuple[int, int] | None = None
    flip: bool = Field(False, description="random horizontal flips")


class PreciseBNParams(_Strict):
    """What a stage that trains batch-norm layers has: the precise-BN pass at its end
    (:func:`pipeline_lib.training.recompute_batchnorm`)."""

    batchnorm_batches: int = Field(50, ge=0, description=(
        "batches of this stage's training data run through the trained net (no gradients, train mode) at its end "
        "to re-estimate every batch-norm layer's running mean and variance as a plain average (a 'precise BN' "
        "pass); 0 keeps the running averages made during training, which lag a fast-changing net. Nets without "
        "batch norm (LeNet) are not touched"))


class StepBudgetParams(_Strict):
    """What a stage with an epoch count and an optional step budget has
    (:func:`pipeline_lib.training.budget_epochs`)."""

    max_steps: int | None = Field(None, gt=0, description="step budget: the run ends after the epoch in which it "
                                  "runs out, if that comes before its epoch count (null: no budget)")


class TrainSupervisedParams(LoaderParams, PreciseBNParams, StepBudgetParams):
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    checkpoint_every: int = Field(1, gt=0, description="epochs between resumable checkpoints")
    max_steps_per_epoch: int | None = Field(None, gt=0, description="cap on the steps of an epoch (null: a pass)")


class DivergenceParams(_Strict):
    """When a training stage stops as diverged, before it writes its checkpoint (a NaN or infinite loss
    always stops it). Both tests are off when set to null.

    - ``loss_growth``: a watched loss (supervised cross-entropy; the adversarial stages' generator, encoder,
      target-net or calibrator loss and their discriminators') that exceeds this multiple of its start stops
      the stage. The start is the mean of the loss's first few steps, each of them checked against the mean
      of the ones before it, so a loss that explodes within the first steps is caught too. GAN losses move
      legitimately, but by a factor of a few, not a thousand.
    - ``chance_margin``: classification only: supervised training whose training accuracy stayed within this
      margin of chance (1 / number of classes) in every epoch of the run stops at its end, once the run has
      at least ``chance_min_steps`` optimiser steps (a short run, e.g. the tiny profile's one epoch, may
      legitimately end near chance).
    """

    loss_growth: float | None = Field(1000.0, gt=1, description="stop when a watched finite loss exceeds this "
                                      "multiple of its start (the mean of its first steps); null: never")
    chance_margin: float | None = Field(0.02, ge=0, lt=1, description="classification: stop when the training "
                                        "accuracy of every epoch stayed within this margin of 1 / classes; "
                                        "null: never")
    chance_min_steps: int = Field(100, gt=0, description="the chance test applies to runs of at least this many "
                                  "optimiser steps")


class EvaluateParams(_Strict):
    """How ``evaluate`` (and the per-epoch target monitor) run a model over a test split."""

    batch_size: int = Field(512, gt=0)
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    infer_max_width: int | None = Field(None, ge=32, description="segmentation: see segmentation.evaluate")
    preview_frames: int = Field(10, ge=1, description="target test images shown in the report's prediction grid")


#: the validators ``selection.validator`` may name: :data:`pipeline_lib.validators.VALIDATORS` (kept here as names,
#: so that params validation imports no torch), and ``last`` for the last checkpoint
VALIDATOR_NAMES = ("source_accuracy", "entropy", "im", "bnm", "snd", "dev", "class_ami")


class SelectionParams(_Strict):
    """Checkpoint selection without target labels (both tracks; docs/selection.md).

    Every adapted row's training stage keeps the weights of up to ``keep`` epochs (every ``every``-th, thinned
    evenly, the last always); ``select`` scores each with every validator on ``target_samples`` target training
    images and ``source_samples`` held-out source images, and the checkpoint ``validator`` picks is the one
    ``evaluate`` scores and the report's main column shows. The target-label oracle is computed beside them and
    never picks.
    """

    every: int = Field(1, gt=0, description="epochs between the checkpoints a training stage keeps")
    keep: int = Field(4, ge=1, description="at most this many checkpoints per run (thinned evenly; the last always)")
    validator: Literal["last", "source_accuracy", "entropy", "im", "bnm", "snd", "dev", "class_ami"] = Field(
        "bnm", description="what picks the checkpoint the report's main column uses (none reads target labels)")
    target_samples: int = Field(1000, gt=1, description="target training images the validators see per checkpoint")
    source_samples: int = Field(1000, gt=1, description="held-out source images (and as many source training "
                                "images for DEV's domain classifier)")
    frames: int = Field(16, gt=1, description="segmentation: frames of each of those samples")


class SegTrainParams(TrainSupervisedParams, FrameParams):
    flip: bool = Field(True, description="random horizontal flips")


class SegEvaluateParams(EvaluateParams):
    """Frames wider than ``infer_max_width`` are inferred scaled down to it (the Cityscapes protocol of
    the papers' code: 1024, i.e. 1024x512) and their logits upsampled to the label's full resolution
    (2048x1024) before scoring; null infers every frame at full resolution."""

    batch_size: int = Field(4, gt=0)
    preview_frames: int = Field(4, ge=1, description="target frames shown in the report's prediction grid")


class SegmentationParams(_Strict):
    """The segmentation track's versions of train_supervised, evaluate and every method's section
    (the methods' sections are added by :func:`params_model`)."""

    train_supervised: SegTrainParams
    evaluate: SegEvaluateParams = SegEvaluateParams()


class RuleResources(_Strict):
    """What a cluster executor asks for per job of a rule (Snakemake resources); no stage reads them, so no
    stage depends on them. ``gpu`` above 1 runs the stage under ``torchrun --nproc_per_node gpu``."""

    gpu: int = Field(0, ge=0, description="GPUs per job (slurm: --gpus); > 1: one torchrun process per GPU")
    mem_mb: int = Field(4000, gt=0, description="memory per job in MiB")
    runtime: int = Field(60, gt=0, description="wall-clock limit per job in minutes")
    cpus_per_task: int | None = Field(None, gt=0, description="CPU cores per job (default: threads_per_job)")


class RuleOverrides(_Strict):
    """A rule's resources where they differ from ``resources.default``."""

    gpu: int | None = Field(None, ge=0)
    mem_mb: int | None = Field(None, gt=0)
    runtime: int | None = Field(None, gt=0)
    cpus_per_task: int | None = Field(None, gt=0)


class ResourcesParams(_Strict):
    default: RuleResources = RuleResources()
    rules: dict[str, RuleOverrides] = Field(default_factory=dict, description="per rule (a stage kind)")

    def for_rule(self, rule: str, threads: int) -> RuleResources:
        """``rule``'s resources: its overrides over the default; its cores default to ``threads``."""
        given = self.rules.get(rule, RuleOverrides()).model_dump(exclude_none=True)
        merged = self.default.model_copy(update=given)
        return merged if merged.cpus_per_task else merged.model_copy(update={"cpus_per_task": threads})


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
    divergence: DivergenceParams = Field(DivergenceParams(), description="when a training stage stops as "
                                         "diverged (both tracks)")
    evaluate: EvaluateParams = EvaluateParams()
    selection: SelectionParams = Field(SelectionParams(), description="checkpoint selection without target labels")
    segmentation: SegmentationParams | None = None
    resources: ResourcesParams = Field(ResourcesParams(), description="per-rule cluster resources (Snakemake)")
    method_paths: tuple[str, ...] = Field((), description="folders of further methods, relative to the project "
                                          "root: each holds methods/ and stages/ (pipeline_lib.plugins)")
    # every method's section (cycada, gam, ...) is added by params_model()
    _raw: dict[str, Any] | None = PrivateAttr(None)  # params.yaml as written (per-profile values unresolved)
    _source: str = PrivateAttr("params.yaml")
    _lazy: bool = PrivateAttr(False)  # method sections held as resolved mappings, validated on first read
    _sections: dict[tuple[str, str], Any] = PrivateAttr(default_factory=dict)

    @property
    def raw(self) -> dict[str, Any] | None:
        """The mapping these params were parsed from, before profiles were resolved (None: built in code)."""
        return self._raw

    def track(self, backbone: str) -> "Track":
        """The train_supervised and evaluate sections that apply to ``backbone``'s task."""
        task = self.backbones[backbone].task
        if task == "classification":
            return Track(task, "", self.train_supervised, self.evaluate)
        assert self.segmentation is not None  # validated in _cross_references
        return Track(task, "segmentation.", self.segmentation.train_supervised, self.segmentation.evaluate)

    def section(self, name: str, backbone: str) -> Any:
        """A method's section (``cycada``, ``gam``, ...) on ``backbone``'s track."""
        holder = self if self.backbones[backbone].task == "classification" else self.segmentation
        prefix = self.track(backbone).prefix
        if name not in section_names() or not hasattr(holder, name):
            raise PipelineError(f"params.yaml: no section {prefix}{name}")
        if not self._lazy:
            return getattr(holder, name)
        if (prefix, name) not in self._sections:
            self._sections[(prefix, name)] = _validate_section(name, prefix, getattr(holder, name), self._source)
        return self._sections[(prefix, name)]

    def experiment_seeds(self, experiment: str) -> tuple[int, ...]:
        return self.experiments[experiment].seeds or self.seeds

    def domain_task(self, domain: str) -> Task:
        if domain in self.data.shifted:
            return self.domain_task(self.data.shifted[domain].base)
        if domain in self.data.folders:
            return "classification" if self.data.folders[domain].layout == "classes" else "segmentation"
        return "classification" if domain in DIGIT_DOMAINS or domain in self.data.derived else "segmentation"

    def known_domains(self) -> tuple[str, ...]:
        return DIGIT_DOMAINS + SCENE_DOMAINS + tuple(self.data.folders) + tuple(self.data.derived) + \
            tuple(self.data.shifted)

    @model_validator(mode="after")
    def _cross_references(self) -> "Params":
        for name, exp in self.experiments.items():
            check_name("experiment", name)
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
    """One task's shared sections; ``prefix`` is where a section lives in params.yaml ("" or "segmentation.")."""

    task: Task
    prefix: str
    train_supervised: TrainSupervisedParams
    evaluate: EvaluateParams | SegEvaluateParams


@functools.cache
def section_names() -> tuple[str, ...]:
    """The methods' sections, one per params module ``pipeline_lib/methods/<name>_params.py`` (found by file
    name: no method module is imported)."""
    return tuple(sorted(stem.removesuffix("_params") for stem in plugins.method_modules("_params")))


def section_module(name: str) -> ModuleType:
    """A method's params module: it names its ``SECTION`` (``name``), its ``PARAMS`` and ``SEG_PARAMS`` classes
    and, for an optional section, ``DEFAULT``/``SEG_DEFAULT``."""
    return importlib.import_module(f"pipeline_lib.methods.{name}_params")


def section_modules() -> list[ModuleType]:
    """Every method's params module (``pipeline_lib/methods/*_params.py``)."""
    return [section_module(name) for name in section_names()]


def _section_model(module: ModuleType, prefix: str) -> tuple[type[BaseModel], Any]:
    """A params module's class and default factory (None: the section is required) on one track."""
    if prefix:
        return module.SEG_PARAMS, getattr(module, "SEG_DEFAULT", None)
    return module.PARAMS, getattr(module, "DEFAULT", None)


@functools.cache
def params_model(lazy: bool = False) -> type[Params]:
    """:class:`Params` with every method's section added, on both tracks; ``lazy``: each section a mapping,
    validated when :meth:`Params.section` first reads it."""
    fields: dict[str, Any] = {}
    seg_fields: dict[str, Any] = {}
    for name in section_names():
        for target, prefix in ((fields, ""), (seg_fields, "segmentation.")):
            if lazy:
                target[name] = (dict[str, Any] | None, None)
                continue
            model, default = _section_model(section_module(name), prefix)
            target[name] = (model, default() if default is not None else ...)
    segmentation = create_model("SegmentationParams", __base__=SegmentationParams, **seg_fields)
    return create_model("Params", __base__=Params, segmentation=(segmentation | None, None), **fields)


def _validate_section(name: str, prefix: str, raw: dict[str, Any] | None, source: str) -> Any:
    """One method's section (profiles already resolved), validated as :func:`load_params` validates it."""
    model, default = _section_model(section_module(name), prefix)
    if raw is None:
        if default is None:
            raise PipelineError(f"{source}: {prefix}{name}: required key is missing")
        return default()
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise PipelineError(_format_validation_error(err, source, f"{prefix}{name}")) from None


def resolve_profile(raw: Any, profile: str, where: str = "") -> Any:
    """Replace every ``{tiny: a, demo: b, paper: c}`` mapping (``full: d`` optional) by the active
    profile's value; ``full`` takes the ``paper`` value where the mapping does not give one."""
    if isinstance(raw, dict):
        keys = set(raw)
        if keys and keys <= set(PROFILES):
            missing = [p for p in REQUIRED_PROFILES if p not in keys]
            if missing:
                raise PipelineError(
                    f"params.yaml: {where or 'value'} is given per profile but lacks {', '.join(missing)}: "
                    f"give all of {', '.join(REQUIRED_PROFILES)} (full is optional) or a single value"
                )
            chosen = profile if profile in raw else PROFILE_FALLBACK[profile]
            return resolve_profile(raw[chosen], profile, where)
        return {k: resolve_profile(v, profile, f"{where}.{k}" if where else str(k)) for k, v in raw.items()}
    if isinstance(raw, list):
        return [resolve_profile(v, profile, f"{where}[{i}]") for i, v in enumerate(raw)]
    return raw


def _format_validation_error(err: ValidationError, source: str, within: str = "") -> str:
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")  # typos first
    first = errors[0]
    loc = ".".join([within] * bool(within) + [str(p) for p in first["loc"]])
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


def _yaml_problem(text: str) -> str:
    """' at line L, column C: <problem>', from the pure-Python parser, whose marks carry the text."""
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as err:
        # one line: the parser's own problem text at its (1-based) line and column; for an unclosed bracket or
        # quote PyYAML notices the problem on a later line, so the construct's start (the context mark) follows
        def at(mark: Any) -> str:
            where = f"line {mark.line + 1}, column {mark.column + 1}"  # PyYAML's marks count from 0
            buffer = getattr(mark, "buffer", None)
            ended = isinstance(buffer, str) and mark.pointer >= len(buffer.rstrip("\0"))
            return where + (" (the end of the file)" if ended else "")

        def flat(message: Any) -> str:
            return " ".join(str(message).split())

        problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
        context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
        detail = flat(problem or err)
        if context:
            detail += f" ({flat(context)}" + (f" that starts at {at(context_mark)})" if context_mark else ")")
        return (f" at {at(mark)}" if mark is not None else "") + f": {detail}"
    return ""


def parse_params(raw: Any, source: str = "params.yaml", sections: Literal["all", "lazy"] = "all") -> Params:
    """Validate a loaded params mapping; raise a one-line :class:`PipelineError` on problems. ``sections``:
    validate every method's section now, or each when :meth:`Params.section` first reads it (a stage)."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    profile = raw.get("profile")
    if profile not in PROFILES:
        raise PipelineError(f"{source}: profile: must be one of {', '.join(PROFILES)}, got {profile!r}")
    resolved = resolve_profile(raw, profile)
    try:
        params = params_model(sections == "lazy").model_validate(resolved)
    except ValidationError as err:
        raise PipelineError(_format_validation_error(err, source)) from None
    params._raw, params._source, params._lazy = raw, source, sections == "lazy"
    for folder in params.method_paths:
        if not (Path(source).parent / folder / "methods").is_dir():
            raise PipelineError(f"{source}: method_paths: {folder!r} has no methods/ folder (a method's "
                                "<name>_spec.py, <name>_params.py and code): fix the path or remove it")
    return params


_BOOL = "tag:yaml.org,2002:bool"


class _ParamsLoader(plugins.SAFE_LOADER):  # type: ignore[misc,valid-type]
    """libyaml's safe loader (~0.15 s less per stage process than pure Python) with YAML 1.2's booleans, as DVC
    reads params.yaml (ruamel.yaml): only true/false are booleans; ``off``, ``on``, ``yes``, ``no`` stay strings.
    So a stage and ``dvc params diff`` / ``dvc exp run -S`` (which rewrites the file and unquotes ``"off"``) agree on
    every value; pydantic still reads ``yes``/``on`` as true where a field is a boolean. A key given twice in one
    mapping is refused, as DVC refuses it, instead of the last one silently winning."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<: *anchor` merges keys below the ones given here: not a duplicate
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise _DuplicateKey(key_node.value, seen[key_node.value], line)
            seen[key_node.value] = line
        return super().construct_mapping(node, deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(f"{key!r} at lines {first} and {second}")
        self.key, self.first, self.second = key, first, second


_ParamsLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _BOOL]
    for first, resolvers in _ParamsLoader.yaml_implicit_resolvers.items()}
_ParamsLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_params(path: str | Path = "params.yaml", sections: Literal["all", "lazy"] = "all") -> Params:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run from the project root (where params.yaml lives)")
    text = path.read_text()
    try:
        raw = yaml.load(text, Loader=_ParamsLoader)
    except _DuplicateKey as dup:
        raise PipelineError(f"{path}: key {dup.key!r} is given twice in one mapping, at lines {dup.first} and "
                            f"{dup.second} (DVC refuses such a file; otherwise the last would win): keep one") from None
    except yaml.YAMLError:
        raise PipelineError(f"{path}: not valid YAML{_yaml_problem(text)}; fix the syntax") from None
    return parse_params(raw, str(path), sections)
