"""GAM's papers' values: Table 1 (digits) and Table 3 (GTA5 -> Cityscapes). Read by the report only."""

from __future__ import annotations

from pipeline_lib.paper_numbers import PaperValue, digits, gam_table3, merge

PAPERS = {
    "gam_gaussian": gam_table3("28.0"),
    "adda_reg": merge(digits("GAM Table 1", "90.5 ± 0.5", "97.4 ± 0.6", "73.5 ± 0.8"), gam_table3("30.5")),
    "gam_noreg": digits("GAM Table 1", "95.6 ± 0.6", "97.8 ± 0.6", "73.6 ± 0.6"),
    "gam": merge(digits("GAM Table 1", "95.7 ± 0.5", "98.0 ± 0.5", "74.6 ± 1.1"), gam_table3("31.3")),
    "label_bound": {("gta5", "cityscapes", "*"): (PaperValue("55 (IoU); 82 (pixel acc); 72 (class acc)",
                                                             "GAM Table 3 (oracle, source distribution)"),)},
}
