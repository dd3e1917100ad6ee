"""The light-weight calibrator's papers' values: Table 1 (digits) and Table 2 (GTA5 -> Cityscapes). Read by the
report only."""

from __future__ import annotations

from pipeline_lib.paper_numbers import digits, segmentation_row

# Calibrator Table 2, GTA5 -> Cityscapes with DRN-26: "Ours" calibrates CyCADA's released DRN-26, which was
# trained on CycleGAN-stylised GTA5 (so our "CycleGAN + calibrator" row)
_T2 = ("83.5 35.2 79.9 24.6 16.2 32.8 33.1 31.8 81.7 29.2 66.3 63.0 14.3 81.8 21.0 26.5 8.5 16.7 24.0 "
       "40.5 75.1 84.0")

PAPERS = {
    "calibrator": digits("Calibrator Table 1", "95.6", "97.1", "97.1"),
    "cycada_calibrator": {**digits("Calibrator Table 1 (CycleGAN + calibrator)", "97.1", "98.3", "97.5"),
                          ("gta5", "cityscapes", "drn26"): (segmentation_row(_T2, "Calibrator Table 2"),)},
}
