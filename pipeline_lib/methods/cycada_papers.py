"""CyCADA's papers' values: Table 2 (digits; ADDA's row also from GAM Table 1) and Table 4 (GTA5 -> Cityscapes).
Read by the report only."""

from __future__ import annotations

from pipeline_lib.paper_numbers import digits, gam_table3, merge, segmentation_row

_T4 = {  # CyCADA Table 4, GTA5 -> Cityscapes val: 19 per-class IoUs, mIoU, fwIoU, pixel accuracy
    ("fcn8s_vgg16", "cycada_feat"): "85.6 30.7 74.7 14.4 13.0 17.6 13.7 5.8 74.6 15.8 69.9 38.2 3.5 72.3 16.0 5.0 0.1 "
                                    "3.6 0.0 29.2 71.5 82.5",
    ("fcn8s_vgg16", "cycada_pixel"): "83.5 38.3 76.4 20.6 16.5 22.2 26.2 21.9 80.4 28.7 65.7 49.4 4.2 74.6 16.0 26.6 "
                                     "2.0 8.0 0.0 34.8 73.1 82.8",
    ("fcn8s_vgg16", "cycada_pixel_feat"): "85.2 37.2 76.5 21.8 15.0 23.8 22.9 21.5 80.5 31.3 60.7 50.5 9.0 76.9 17.1 "
                                          "28.2 4.5 9.8 0.0 35.4 73.8 83.6",
    ("drn26", "cycada_feat"): "78.1 31.1 71.2 10.3 14.1 29.8 28.1 20.9 74.0 16.8 51.9 53.6 6.1 65.4 8.2 20.9 1.8 13.9 "
                              "5.9 31.7 67.4 78.4",
    ("drn26", "cycada_pixel"): "63.7 24.7 69.3 21.2 17.0 30.3 33.0 32.0 80.5 25.3 62.3 62.0 15.1 73.1 19.8 23.6 5.5 "
                               "16.2 28.7 37.0 63.8 75.4",
    ("drn26", "cycada_pixel_feat"): "79.1 33.1 77.9 23.4 17.3 32.1 33.3 31.8 81.5 26.7 69.0 62.8 14.7 74.5 20.9 25.6 "
                                    "6.9 18.8 20.4 39.5 72.4 82.3",
}


def _paper(row: str, *tables: dict) -> dict:
    return merge(*tables, {("gta5", "cityscapes", arch): (segmentation_row(v, "CyCADA Table 4"),)
                           for (arch, name), v in _T4.items() if name == row})


PAPERS = {
    "cycada_pixel": _paper("cycada_pixel", digits("CyCADA Table 2", "95.6 ± 0.2", "96.4 ± 0.1", "70.3 ± 0.2")),
    "cycada_feat": _paper("cycada_feat", digits("CyCADA Table 2 (ADDA)", "89.4 ± 0.2", "90.1 ± 0.8", "76.0 ± 1.8"),
                          digits("GAM Table 1 (ADDA)", "90.2 ± 0.9", "97.2 ± 0.4", "72.0 ± 0.6"), gam_table3("28.6")),
    "cycada_pixel_feat": _paper("cycada_pixel_feat",
                                digits("CyCADA Table 2", "95.6 ± 0.2", "96.5 ± 0.1", "90.4 ± 0.4")),
}
