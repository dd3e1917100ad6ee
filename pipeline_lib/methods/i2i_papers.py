"""I2IAdapt's papers' values: Table 2 (digits, its errors as accuracies) and Table 4 (GTA5 -> Cityscapes). Read by
the report only."""

from __future__ import annotations

from pipeline_lib.methods.i2i_params import DEFAULT_SETS
from pipeline_lib.methods.i2i_spec import row_name
from pipeline_lib.paper_numbers import PaperValue, digits

#: Table 2's errors (MNIST->USPS, USPS->MNIST, SVHN->MNIST) as accuracies
_TABLE2 = {
    "none": ("91.1", "67.0", "71.5"),
    "z": ("97.9", "97.2", "80.1"),
    "idy": ("97.9", "71.5", "76.3"),
    "idy_trc": ("98.6", "77.4", "70.5"),
    "z_idy": ("98.7", "97.0", "87.9"),
    "z_idy_trc": ("98.8", "97.6", "90.1"),
    "z_tr_idx_idy_trc": ("97.5", "96.4", "90.0"),
    "all": ("98.5", "97.4", "89.6"),
}
# Table 4, GTA5 -> Cityscapes, "Ours" with a dilated ResNet34 encoder (the paper's own, not our DRN-26)
_T4 = PaperValue("31.8 (mIoU, dilated ResNet34)", "I2IAdapt Table 4")


def _paper(set_name: str) -> dict:
    out = digits("I2IAdapt Table 2 (100 - error)", *_TABLE2[set_name]) if set_name in _TABLE2 else {}
    if set_name == "all":
        out[("gta5", "cityscapes", "drn26")] = (_T4,)
    return out


PAPERS = {row_name(s): _paper(s) for s in DEFAULT_SETS}
