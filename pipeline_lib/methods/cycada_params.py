"""CyCADA's params.yaml section, ``cycada`` (digits) and ``segmentation.cycada`` (street scenes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline_lib.config import (DriftReduction, FrameParams, LoaderParams, PreciseBNParams, SegTrainParams,
                                 StepBudgetParams, TrainSupervisedParams, _Strict)


class GeneratorParams(_Strict):
    ngf: int = Field(gt=0)
    n_down: int = Field(2, ge=0)
    n_blocks: int = Field(2, ge=0)
    norm: Literal["instance", "batch"] = "instance"


class ImageDiscriminatorParams(_Strict):
    ndf: int = Field(gt=0)
    n_layers: int = Field(6, ge=2)
    norm: Literal["instance", "batch"] = "instance"


class CycleGANParams(LoaderParams):
    """Pixel-level adaptation (CyCADA section 3, appendix 6.1.1)."""

    generator: GeneratorParams
    discriminator: ImageDiscriminatorParams
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    lambda_gan: float = Field(1.0, ge=0)
    lambda_gan_st: float = Field(1.0, ge=0, description="factor on the S -> T adversarial term alone "
                                 "(the authors' fork: 2, `2 * criterionGAN(netD_A(fake_B))`)")
    lambda_cycle: float = Field(1.0, ge=0)
    lambda_semantic: float = Field(1.0, ge=0)
    lambda_identity: float = Field(0.0, ge=0)
    semantic_loss: Literal["frozen", "joint", "off"] = "frozen"
    joint_ce_threshold: float = Field(1.0, gt=0)
    semantic_targets: Literal["predicted", "labels"] = Field(
        "predicted", description="S -> T semantic targets: the labeller's prediction on the untranslated source "
        "image (eq. 4), or the true source labels (the authors' fork); T -> S always uses the prediction")
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


class TranslateParams(LoaderParams):
    batch_size: int = Field(256, gt=0)
    shard_size: int = Field(20000, gt=0, description="images per shard file of a translated dataset")
    grid_samples: int = Field(8, gt=0)
    content_check: int = Field(1000, gt=0, description="the first N source frames that the frozen source model "
                               "scores before and after translation (the report's content check)")


class AdaptFeaturesParams(LoaderParams, PreciseBNParams, StepBudgetParams):
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


class SegCycleGANParams(CycleGANParams, FrameParams):
    """The paper: frames scaled to width 1024, random 400x400 crops, no semantic loss (memory)."""


class SegAdaptParams(AdaptFeaturesParams, FrameParams):
    """CyCADA 6.1.2: SGD momentum 0.99, lr 1e-5, encoder loss x0.1, 1 + 1 crops of 768, gate over 100 iterations."""


class SegCycadaParams(_Strict):
    cyclegan: SegCycleGANParams
    translate: TranslateParams = TranslateParams()
    train_task: SegTrainParams
    adapt_features: SegAdaptParams


SECTION = "cycada"
PARAMS = CycadaParams
SEG_PARAMS = SegCycadaParams
