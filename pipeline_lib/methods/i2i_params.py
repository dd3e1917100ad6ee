"""I2IAdapt's params.yaml section, ``i2i`` (digits) and ``segmentation.i2i`` (street scenes); both optional:
the defaults are the paper's settings (Murez et al. 4, 4.1, 4.3) and, where it is silent, the cited
building blocks' (WGAN-GP's gradient penalty of 10)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline_lib.config import FrameParams, LoaderParams, PreciseBNParams, _Strict

#: the loss terms of eq. 7, with Q_id split into its two directions (Table 2 switches them separately)
Term = Literal["c", "z", "tr", "id_x", "id_y", "cyc", "trc"]
TERMS: tuple[str, ...] = ("c", "z", "tr", "id_x", "id_y", "cyc", "trc")

#: Table 2's lines (and Table 1's special cases) as named sets of switched-on terms
DEFAULT_SETS: dict[str, tuple[str, ...]] = {
    "none": ("c",),
    "z": ("c", "z"),                      # also Table 1's ADDA / FCNs in the wild
    "idy": ("c", "id_y"),                 # also Table 1's DRCN
    "idy_trc": ("c", "id_y", "trc"),
    "z_idy": ("c", "z", "id_y"),
    "z_idy_trc": ("c", "z", "id_y", "trc"),
    "z_tr_idx_idy_trc": ("c", "z", "tr", "id_x", "id_y", "trc"),
    "all": ("c", "z", "tr", "id_x", "id_y", "cyc", "trc"),
    "cyclegan": ("tr", "cyc", "trc"),     # Table 1's CycleGAN (tr + cyc); trc gives it a classifier
}


class Lambdas(_Strict):
    """The weight of each loss term when a set switches it on (eq. 7)."""

    c: float = Field(1.0, ge=0)
    z: float = Field(0.05, ge=0)
    tr: float = Field(0.02, ge=0)
    id_x: float = Field(0.1, ge=0)
    id_y: float = Field(0.1, ge=0)
    cyc: float = Field(0.1, ge=0)
    trc: float = Field(0.1, ge=0)


class I2IParams(LoaderParams, PreciseBNParams):
    """I2IAdapt (Murez et al. 3, 4): a shared encoder f and classifier h (the track's task model), decoders
    g_x, g_y sharing their first layers, WGAN-GP critics d_z (features), d_x, d_y (images); eq. 7's terms
    weighted by ``lambdas`` and switched on per named set in ``sets`` (a report row ``i2i_<set>`` each)."""

    lambdas: Lambdas = Lambdas()
    sets: dict[str, tuple[Term, ...]] = Field(default_factory=lambda: dict(DEFAULT_SETS), description=(
        "named sets of switched-on terms (c z tr id_x id_y cyc trc): Table 2's lines and Table 1's special cases"))
    default_sets: tuple[str, ...] | None = Field(None, description=(
        "the sets an experiment that lists no methods reports (null: all of them; name others in "
        "experiments.<name>.methods as i2i_<set>)"))
    init: Literal["scratch", "source_only"] = Field("scratch", description=(
        "the encoder and classifier's start: scratch (random, as the paper's digits models train end to end) or the "
        "experiment's source-only model (it reads the backbone's own inputs: size null, grey false on a colour "
        "backbone)"))
    size: int | None = Field(32, ge=16, description="digits: images are bilinearly upsampled to this side (4.1)")
    grey: bool = Field(True, description="digits: colour images are converted to grey (4.1: SVHN)")
    scale: int = Field(1, ge=1, description="street scenes: images are downsampled by this factor (4.3: 2) and the "
                       "logits upsampled back")
    augment: bool = Field(True, description="random translations and rotations of every training image (4.1)")
    rotate: float = Field(10.0, ge=0, description="degrees, either way (the paper: 'random rotations', no range)")
    translate: float = Field(0.1, ge=0, lt=1, description="fraction of the side, either way")
    ngf: int = Field(64, gt=0, description="decoder width")
    shared_layers: int = Field(2, ge=0, description="the decoders' first layers that g_x and g_y share")
    ndf: int = Field(64, gt=0, description="image critics' width")
    critic_layers: int = Field(3, ge=2, description="stride-2 convolutions of d_x and d_y (digits 3, scenes 4)")
    disc_hidden: int = Field(500, gt=0, description="d_z: three fully connected layers of this width")
    gradient_penalty: float = Field(10.0, ge=0, description="WGAN-GP's lambda (Gulrajani et al.: 10)")
    drift_penalty: float = Field(0.001, ge=0, description=(
        "epsilon * E[d(real)^2] added to each critic's loss (Karras et al. 2018's 0.001), which anchors the critics' "
        "scores near 0. 0: plain WGAN-GP, under which the shared encoder diverges (docs/i2i.md)"))
    z_routing: Literal["target", "both"] = Field("target", description=(
        "which codes carry Q_z's gradient to the encoder: target (section 4: 'only backpropagated to the generator "
        "for target images') or both (the Wasserstein distance itself, as shared-encoder methods train it; not the "
        "paper's: with a shared encoder, target-only pushes both domains' codes along the critic, docs/i2i.md)"))
    critic_steps: int = Field(1, ge=1, description="critic updates per generator update ('alternating': 1)")
    lr: float = Field(2e-4, gt=0, description="Adam, every network (section 4)")
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    batch_size: int = Field(64, gt=0, description="images per domain per step (the paper does not say)")
    epochs: int = Field(10, gt=0)
    steps_per_epoch: int | None = Field(None, gt=0, description="null: one pass over the source split")
    checkpoint_every: int = Field(1, gt=0)
    n_seeds: int | None = Field(None, gt=0, description=(
        "the rows run on the experiment's first n seeds (null: all of them); the report states each row's seeds"))
    embedding_points: int = Field(500, gt=0, description="test images per domain in the feature-embedding figure")
    embedding_sets: tuple[str, ...] = Field(("none", "cyclegan", "all"), description=(
        "the sets whose features Fig. 3's embedding shows: no adaptation, translation without d_z, the full model"))
    embedding_method: Literal["tsne", "pca"] = "tsne"

    @field_validator("sets")
    @classmethod
    def _names(cls, sets: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """Sets given in params.yaml replace the defaults of the same name; each names a report row."""
        for name, terms in sets.items():
            if name not in DEFAULT_SETS:
                raise ValueError(f"unknown set {name!r}: the report rows are i2i_<set> for the sets "
                                 f"{', '.join(DEFAULT_SETS)}")
            if not terms:
                raise ValueError(f"set {name!r} switches on no loss term")
        return {**DEFAULT_SETS, **sets}

    @model_validator(mode="after")
    def _trainable(self) -> "I2IParams":
        for name in (*(self.default_sets or ()), *self.embedding_sets):
            if name not in self.sets:
                raise ValueError(f"unknown set {name!r} in default_sets or embedding_sets (known: "
                                 f"{', '.join(self.sets)})")
        for name, terms in self.sets.items():
            if not {"c", "trc"} & set(terms):
                raise ValueError(f"set {name!r}: without c or trc nothing trains the classifier h")
            if all(getattr(self.lambdas, t) == 0 for t in terms):
                raise ValueError(f"set {name!r}: every lambda of its terms is 0")
        return self

    def weights(self, name: str) -> dict[str, float]:
        """Set ``name``'s lambda per term: its terms' ``lambdas``, the others 0."""
        on = set(self.sets[name])
        return {t: (getattr(self.lambdas, t) if t in on else 0.0) for t in TERMS}


class SegI2IParams(I2IParams, FrameParams):
    """Section 4.3: lambdas c 1, z 0.01, tr 0.04, id 0.2, cyc 0, trc 0.1; images downsampled by 2, 256x256
    patches; decoders of a stride-1 convolution and stride-2 transposed convolutions, critics of four."""


SECTION = "i2i"
PARAMS = I2IParams
SEG_PARAMS = SegI2IParams
DEFAULT = I2IParams
SEG_DEFAULT = lambda: SegI2IParams(  # noqa: E731
    lambdas=Lambdas(c=1.0, z=0.01, tr=0.04, id_x=0.2, id_y=0.2, cyc=0.0, trc=0.1), size=None, grey=False, scale=2,
    augment=False, shared_layers=1, critic_layers=4, batch_size=4, crop=(512, 512), flip=True)
