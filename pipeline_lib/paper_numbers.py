"""How the papers' reported numbers are written down (SPEC section 7).

Each method's declaration (``pipeline_lib/methods/<name>_spec.py``) lists, per report row, the
values its papers report for a setting: ``(source domain, target domain, backbone arch) -> values``,
with arch ``"*"`` for a value that does not depend on the model. Digits values are target test
accuracy in percent (mean ± std over the papers' runs where given). A row only carries a paper
value when its setting matches: the same domains and the paper's backbone.
"""

from __future__ import annotations

from typing import NamedTuple


class PaperValue(NamedTuple):
    value: str
    table: str


class PaperSegmentation(NamedTuple):
    """A segmentation row of a paper: per-class IoUs (%) in Cityscapes train-id order, mIoU, fwIoU,
    pixel accuracy, and its table."""

    per_class: tuple[float, ...]
    miou: float
    fwiou: float
    pixel_acc: float
    table: str

    @property
    def value(self) -> str:
        return f"{self.miou} / {self.fwiou} / {self.pixel_acc}"


def segmentation_row(numbers: str, table: str) -> PaperSegmentation:
    """Parse "19 per-class IoUs, then mIoU fwIoU pixel-acc" as printed in CyCADA Table 4."""
    vals = tuple(float(v) for v in numbers.split())
    if len(vals) != 22:
        raise ValueError(f"{table}: expected 19 IoUs + 3 scores, got {len(vals)} numbers")
    return PaperSegmentation(vals[:19], vals[19], vals[20], vals[21], f"{table} (mIoU / fwIoU / pixel acc)")


#: the backbone the papers' digit tables use
DIGITS_ARCH = "lenet"
#: the three digit pairs the papers report, in the order their tables list them
DIGIT_PAIRS = (("mnist", "usps"), ("usps", "mnist"), ("svhn", "mnist"))


def digits(table: str, *values: str) -> dict[tuple[str, str, str], tuple[PaperValue, ...]]:
    """One paper row over the digit pairs (MNIST->USPS, USPS->MNIST, SVHN->MNIST), on LeNet."""
    return {(src, tgt, DIGITS_ARCH): (PaperValue(v, table),) for (src, tgt), v in zip(DIGIT_PAIRS, values)}


def gam_table3(value: str) -> dict[tuple[str, str, str], tuple[PaperValue, ...]]:
    """A GAM Table 3 value: GTA5 -> Cityscapes IoU with the ERFNet encoder (our ``erfnet_encoder``)."""
    return {("gta5", "cityscapes", "erfnet_encoder"): (PaperValue(value, "GAM Table 3 (IoU, ERFNet)"),)}


def merge(*tables: dict[tuple[str, str, str], tuple]) -> dict[tuple[str, str, str], tuple]:
    """Join several papers' values for one row (a setting reported twice keeps both, in order)."""
    out: dict[tuple[str, str, str], tuple] = {}
    for table in tables:
        for key, values in table.items():
            out[key] = out.get(key, ()) + tuple(values)
    return out
