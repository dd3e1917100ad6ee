"""GAM's params.yaml section, ``gam`` (digits) and ``segmentation.gam`` (street scenes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline_lib.config import DriftReduction, FrameParams, LoaderParams, PreciseBNParams, _Strict


class GaussianMatchParams(_Strict):
    """GAM section 4.1: statistics over ``max_batches`` batches (null: the whole training split)."""

    batch_size: int = Field(256, gt=0)
    max_batches: int | None = Field(None, gt=0)


class MatchActivationsParams(LoaderParams, PreciseBNParams):
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
    checkpoint_every: int = Field(1, gt=0)


class GamParams(_Strict):
    layers: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="per backbone: the named layers GAM "
                                               "matches, in forward order (5.2: the last two; 5.3: four over the "
                                               "depth)")
    gaussian_match: GaussianMatchParams = GaussianMatchParams()
    match_activations: MatchActivationsParams
    adda_weight_reg: float = Field(1.0, gt=0, description="the weight regulariser of the 'ADDA + weight "
                                   "regulariser' row (ADDA itself is CyCADA's feature-level stage)")


class SegMatchActivationsParams(MatchActivationsParams, FrameParams):
    """GAM 5.3: LSGAN, lambda 0.1, batch 12 random 1024x512 crops, Adam, doubled weight regulariser."""


class SegGamParams(GamParams):
    match_activations: SegMatchActivationsParams


SECTION = "gam"
PARAMS = GamParams
SEG_PARAMS = SegGamParams
