"""The papers' values for source only and the target oracle (read by the report only)."""

from __future__ import annotations

from pipeline_lib.paper_numbers import digits, gam_table3, merge, segmentation_row

_T4 = {  # CyCADA Table 4 (GTA5 -> Cityscapes val): 19 per-class IoUs, mIoU, fwIoU, pixel accuracy
    ("fcn8s_vgg16", "source_only"): "26.0 14.9 65.1 5.5 12.9 8.9 6.0 2.5 70.0 2.9 47.0 24.5 0.0 40.0 12.1 1.5 0.0 0.0 "
                                    "0.0 17.9 41.9 54.0",
    ("fcn8s_vgg16", "oracle"): "96.4 74.5 87.1 35.3 37.8 36.4 46.9 60.1 89.0 54.3 89.8 65.6 35.9 89.4 38.6 64.1 38.6 "
                               "40.5 65.1 60.3 87.6 93.1",
    ("drn26", "source_only"): "42.7 26.3 51.7 5.5 6.8 13.8 23.6 6.9 75.5 11.5 36.8 49.3 0.9 46.7 3.4 5.0 0.0 5.0 1.4 "
                              "21.7 47.4 62.5",
    ("drn26", "oracle"): "97.3 79.8 88.6 32.5 48.2 56.3 63.6 73.3 89.0 58.9 93.0 78.2 55.2 92.2 45.0 67.3 39.6 49.9 "
                         "73.6 67.4 89.6 94.3",
}


def _scenes(row: str) -> dict:
    out: dict = {("gta5", "cityscapes", arch): (segmentation_row(v, "CyCADA Table 4"),)
                 for (arch, name), v in _T4.items() if name == row}
    return {**out, **gam_table3({"source_only": "15.8", "oracle": "65.0"}[row])}


PAPERS = {
    "source_only": merge(digits("CyCADA Table 2", "82.2 ± 0.8", "69.6 ± 3.8", "67.1 ± 0.6"),
                         digits("GAM Table 1", "77.8", "70.7", "60.3"), _scenes("source_only")),
    "oracle": merge(digits("CyCADA Table 2", "96.3 ± 0.1", "99.2 ± 0.1", "99.2 ± 0.1"),
                    digits("GAM Table 1 (supervised)", "96.4", "99.9", "99.9"), _scenes("oracle")),
}
