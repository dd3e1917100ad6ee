"""The papers' reported numbers, for the ``paper`` column of report rows (SPEC section 7).

Keyed by (source domain, target domain, method). Digits values are target test accuracy in
percent (mean +- std over the papers' runs where given). A row only carries a paper value
when its setting matches: the same domains and the paper's backbone.
"""

from __future__ import annotations

from typing import NamedTuple


class PaperValue(NamedTuple):
    value: str
    table: str


# backbone used by the papers' digit tables
PAPER_BACKBONES = {"lenet"}

PAPER: dict[tuple[str, str, str], tuple[PaperValue, ...]] = {
    ("mnist", "usps", "source_only"): (PaperValue("82.2 ± 0.8", "CyCADA Table 2"), PaperValue("77.8", "GAM Table 1")),
    ("usps", "mnist", "source_only"): (PaperValue("69.6 ± 3.8", "CyCADA Table 2"), PaperValue("70.7", "GAM Table 1")),
    ("svhn", "mnist", "source_only"): (PaperValue("67.1 ± 0.6", "CyCADA Table 2"), PaperValue("60.3", "GAM Table 1")),
    ("mnist", "usps", "oracle"): (PaperValue("96.3 ± 0.1", "CyCADA Table 2"),),
    ("usps", "mnist", "oracle"): (PaperValue("99.2 ± 0.1", "CyCADA Table 2"),),
    ("svhn", "mnist", "oracle"): (PaperValue("99.2 ± 0.1", "CyCADA Table 2"),),
    ("mnist", "usps", "cycada_feat"): (PaperValue("89.4 ± 0.2", "CyCADA Table 2 (ADDA)"),
                                       PaperValue("90.2 ± 0.9", "GAM Table 1 (ADDA)")),
    ("usps", "mnist", "cycada_feat"): (PaperValue("90.1 ± 0.8", "CyCADA Table 2 (ADDA)"),
                                       PaperValue("97.2 ± 0.4", "GAM Table 1 (ADDA)")),
    ("svhn", "mnist", "cycada_feat"): (PaperValue("76.0 ± 1.8", "CyCADA Table 2 (ADDA)"),
                                       PaperValue("72.0 ± 0.6", "GAM Table 1 (ADDA)")),
    ("mnist", "usps", "cycada_pixel"): (PaperValue("95.6 ± 0.2", "CyCADA Table 2"),),
    ("usps", "mnist", "cycada_pixel"): (PaperValue("96.4 ± 0.1", "CyCADA Table 2"),),
    ("svhn", "mnist", "cycada_pixel"): (PaperValue("70.3 ± 0.2", "CyCADA Table 2"),),
    ("mnist", "usps", "cycada_pixel_feat"): (PaperValue("95.6 ± 0.2", "CyCADA Table 2"),),
    ("usps", "mnist", "cycada_pixel_feat"): (PaperValue("96.5 ± 0.1", "CyCADA Table 2"),),
    ("svhn", "mnist", "cycada_pixel_feat"): (PaperValue("90.4 ± 0.4", "CyCADA Table 2"),),
}


def paper_values(source: str, target: str, method: str, backbone_arch: str) -> tuple[PaperValue, ...]:
    if backbone_arch not in PAPER_BACKBONES:
        return ()
    return PAPER.get((source, target, method), ())
