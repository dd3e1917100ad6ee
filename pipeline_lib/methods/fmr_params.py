"""Feature-map regression's params.yaml section, ``fmr`` (digits) and ``segmentation.fmr`` (street scenes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from pipeline_lib.config import (FrameParams, LoaderParams, PreciseBNParams, SegTrainParams, TrainSupervisedParams,
                                 _Strict)
from pipeline_lib.errors import PipelineError

#: the regression variants besides the single layers ``pool1``..``pool5``
COMBINED = ("inc", "dec")


def _resample(values: list[float], n: int) -> list[float]:
    """``values`` linearly resampled at ``n`` evenly spaced points, both ends kept (the paper's five W_inc
    weights over a backbone with other than five post-pooling layers)."""
    if n == len(values) or n < 2:
        return values if n == len(values) else values[-1:]
    out = []
    for i in range(n):
        pos = i * (len(values) - 1) / (n - 1)
        lo = min(int(pos), len(values) - 2)
        out.append(values[lo] + (pos - lo) * (values[lo + 1] - values[lo]))
    return out


def variant_weights(layers: list[str], variant: str, weights_inc: tuple[float, ...]) -> dict[str, float]:
    """The layers a variant regresses and their weights w_l."""
    if variant.startswith("pool") and variant[4:].isdigit():
        k = int(variant[4:])
        if not 1 <= k <= len(layers):
            raise PipelineError(f"regression variant {variant}: the backbone has {len(layers)} post-pooling "
                                f"layer(s) in fmr.layers ({', '.join(layers)})")
        return {layers[k - 1]: 1.0}
    if variant not in COMBINED:
        raise PipelineError(f"unknown regression variant {variant!r} (pool<k>, inc or dec)")
    inc = _resample(list(weights_inc), len(layers))
    weights = inc if variant == "inc" else inc[::-1]
    return {name: float(w) for name, w in zip(layers, weights)}


#: the rows that regress one post-pooling layer: fmr_pool<k> regresses fmr.layers.<backbone>[k - 1]
MAX_LAYERS = 5


class RegressParams(LoaderParams, PreciseBNParams):
    """Section 3.1: H2 starts from H1 and minimises sum_l w_l ||F_l(H1, X1) - F_l(H2, X2)||^2 over pairs."""

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="iterations per epoch (null: one pass over the pairs)")
    reduction: Literal["mean", "sum"] = Field("mean", description="||.||^2 per layer: mean over its elements (a "
                                              "layer's weight is not swamped by its size) or the literal sum")
    weights_inc: tuple[float, ...] = Field((0.2, 0.4, 0.6, 0.8, 0.9), min_length=2,
                                           description="W_inc (4.2.2), shallow to deep; W_dec is its reverse")
    checkpoint_every: int = Field(1, gt=0)

    @field_validator("weights_inc")
    @classmethod
    def _increasing(cls, weights: tuple[float, ...]) -> tuple[float, ...]:
        if any(w <= 0 for w in weights) or list(weights) != sorted(weights):
            raise ValueError("weights_inc must be positive and increasing (W_dec is its reverse)")
        return weights


class InversionParams(_Strict):
    """Section 3.3: from white noise, SGD on the image against a content loss (1/2 ||F_l - F_l(X1)||^2) and a
    Gram-matrix style loss per regressed layer, through H1 and through H2."""

    images: int = Field(4, gt=0, description="D1 test images per grid")
    steps: int = Field(gt=0)
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    style_weight: float = Field(1.0, ge=0)
    variant: str = Field("deepest", description="the H2 shown: a regression variant (pool<k>, inc, dec) or "
                         "deepest (the deepest single post-pooling layer, the paper's pool5)")


class FmrParams(_Strict):
    layers: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="per backbone: the post-pooling "
                                               "layers it regresses, in forward order (the paper's pool1..pool5)")
    regress: RegressParams
    finetune: TrainSupervisedParams = Field(description="B2: H1 finetuned on D2 with its labels")
    inversion: InversionParams


class SegRegressParams(RegressParams, FrameParams):
    """Pairs are cropped and flipped alike (one crop per batch)."""


class SegFmrParams(FmrParams):
    regress: SegRegressParams
    finetune: SegTrainParams


SECTION = "fmr"
PARAMS = FmrParams
SEG_PARAMS = SegFmrParams
