"""The light-weight calibrator's params.yaml section, ``calibrator`` and ``segmentation.calibrator``
(both optional: the defaults are the paper's settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipeline_lib.config import FrameParams, LoaderParams


class CalibratorParams(LoaderParams):
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
    softmax: bool = Field(False, description="the feature discriminator sees softmax(layer) (the authors' release: "
                          "softmax of the logits); the paper: the M_s features as they are")
    source_weight: float = Field(1.0, ge=0, description="weight of the calibrated-source (G3) terms of eq. 7 (the "
                                 "paper: 1, as the target's; the authors' release: 0.1 for digits)")
    patch: int = Field(16, gt=0, description="side of the random patches the pixel discriminator sees (their "
                       "pixels are shuffled)")
    disc_hidden: int = Field(500, gt=0, description="both discriminators: two fully connected layers")
    discriminators: Literal["paper", "release"] = Field(
        "paper", description="paper: two fully connected layers each (disc_hidden), one patch per image at a random "
        "place; release: the authors' release's, a feature discriminator of three (1000, 500, dropout 0.5) and a "
        "pixel discriminator of two (128 hidden, N(0, 0.02) init) that sees one patch place and one pixel order "
        "per batch, on the grid of non-overlapping patches (disc_hidden unused)")
    output: Literal["symmetric", "one_sided"] = Field(
        "symmetric", description="G'_c's output: symmetric, linf * tanh from a zero head (training starts at the "
        "identity); one_sided, the release's clamp((tanh + 1) / 2, 0, linf) in pixel units with N(0, 0.02) init")
    weight_decay: float = Field(0.0, ge=0, description="Adam's L2 weight decay for the calibrator and both "
                                "discriminators (the paper: none stated; the release: 5e-4)")
    frozen_dropout: bool = Field(False, description="the frozen model's dropout layers stay active while the "
                                 "calibrator trains (the release calls src_net.train(); batch norms stay in eval "
                                 "here, so the deployed model is still bit-identical)")
    lambda_feat: float = Field(1.0, ge=0)
    lambda_pixel: float = Field(1.0, ge=0)
    lr: float = Field(1e-4, gt=0, description="Adam, for the calibrator and both discriminators")
    beta1: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(128, gt=0, description="images per domain per step")
    epochs: int = Field(10, gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="null: one pass over the source split")
    checkpoint_every: int = Field(1, gt=0)
    fourier_images: int = Field(64, gt=0, description="target test images behind the Fourier plot (section 5.1)")

    @model_validator(mode="after")
    def _has_a_discriminator(self) -> "CalibratorParams":
        if self.lambda_feat == 0 and self.lambda_pixel == 0:
            raise ValueError("calibrator: lambda_feat and lambda_pixel are both 0, so nothing trains the calibrator")
        return self


class SegCalibratorParams(CalibratorParams, FrameParams):
    """Ye et al. 4: batch 6 on DRN-26, Adam 1e-4, L-infinity 0.01."""


def settings(cfg: CalibratorParams) -> str:
    """The run's choices where this project departs from the paper (the report's ``settings`` column): the
    authors' release's options that are switched on, each named; "the paper's formulation" when none is."""
    notes = []
    if cfg.layer != "encoder" or cfg.softmax:
        origin = "the authors' release; " if (cfg.layer, cfg.softmax) == ("logits", True) else ""
        notes.append(f"feature discriminator on {'softmax of ' if cfg.softmax else ''}{cfg.layer} "
                     f"({origin}the paper: M_s features)")
    if cfg.source_weight != 1:
        notes.append(f"calibrated-source terms weighted {cfg.source_weight:g}")
    if cfg.discriminators == "release":
        notes.append("the release's discriminators")
    if cfg.output == "one_sided":
        notes.append("the release's one-sided output")
    if cfg.weight_decay:
        notes.append(f"weight decay {cfg.weight_decay:g}")
    if cfg.frozen_dropout:
        notes.append("the frozen model's dropout active")
    return "; ".join(notes) or "the paper's formulation (M_s features, eq. 7 weighted equally)"


SECTION = "calibrator"
PARAMS = CalibratorParams
SEG_PARAMS = SegCalibratorParams
DEFAULT = CalibratorParams
SEG_DEFAULT = lambda: SegCalibratorParams(batch_size=6, linf=0.01, patch=64)  # noqa: E731
