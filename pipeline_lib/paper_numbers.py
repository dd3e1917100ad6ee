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
    ("mnist", "usps", "adda_reg"): (PaperValue("90.5 ± 0.5", "GAM Table 1"),),
    ("usps", "mnist", "adda_reg"): (PaperValue("97.4 ± 0.6", "GAM Table 1"),),
    ("svhn", "mnist", "adda_reg"): (PaperValue("73.5 ± 0.8", "GAM Table 1"),),
    ("mnist", "usps", "gam_noreg"): (PaperValue("95.6 ± 0.6", "GAM Table 1"),),
    ("usps", "mnist", "gam_noreg"): (PaperValue("97.8 ± 0.6", "GAM Table 1"),),
    ("svhn", "mnist", "gam_noreg"): (PaperValue("73.6 ± 0.6", "GAM Table 1"),),
    ("mnist", "usps", "gam"): (PaperValue("95.7 ± 0.5", "GAM Table 1"),),
    ("usps", "mnist", "gam"): (PaperValue("98.0 ± 0.5", "GAM Table 1"),),
    ("svhn", "mnist", "gam"): (PaperValue("74.6 ± 1.1", "GAM Table 1"),),
}
# Calibrator (Ye et al., CVPR 2020) Table 1: the calibrator alone, and on CycleGAN-stylised source ("CyCleGAN+Ours")
for (_src, _tgt), (_alone, _cyc) in {("mnist", "usps"): ("95.6", "97.1"), ("usps", "mnist"): ("97.1", "98.3"),
                                     ("svhn", "mnist"): ("97.1", "97.5")}.items():
    PAPER[(_src, _tgt, "calibrator")] = (PaperValue(_alone, "Calibrator Table 1"),)
    PAPER[(_src, _tgt, "cycada_calibrator")] = (PaperValue(_cyc, "Calibrator Table 1 (CycleGAN + calibrator)"),)

for (_src, _tgt), _value in {("mnist", "usps"): "96.4", ("usps", "mnist"): "99.9", ("svhn", "mnist"): "99.9"}.items():
    PAPER[(_src, _tgt, "oracle")] += (PaperValue(_value, "GAM Table 1 (supervised)"),)

# GAM Table 3, GTA5 -> Cityscapes with ERFNet (encoder, bilinear upsampling): IoU %
_GAM_T3 = {"source_only": "15.8", "gam_gaussian": "28.0", "cycada_feat": "28.6", "adda_reg": "30.5", "gam": "31.3",
           "oracle": "65.0", "label_bound": "55"}


# CyCADA Table 4, GTA5 -> Cityscapes val: the 19 per-class IoUs (Cityscapes train-id order), then
# mIoU, fwIoU, pixel accuracy. (A) VGG16-FCN8s, (B) DRN-26.
_T4 = {
    ("fcn8s_vgg16", "source_only"): "26.0 14.9 65.1 5.5 12.9 8.9 6.0 2.5 70.0 2.9 47.0 24.5 0.0 40.0 12.1 1.5 0.0 0.0 0.0 17.9 41.9 54.0",
    ("fcn8s_vgg16", "cycada_feat"): "85.6 30.7 74.7 14.4 13.0 17.6 13.7 5.8 74.6 15.8 69.9 38.2 3.5 72.3 16.0 5.0 0.1 3.6 0.0 29.2 71.5 82.5",
    ("fcn8s_vgg16", "cycada_pixel"): "83.5 38.3 76.4 20.6 16.5 22.2 26.2 21.9 80.4 28.7 65.7 49.4 4.2 74.6 16.0 26.6 2.0 8.0 0.0 34.8 73.1 82.8",
    ("fcn8s_vgg16", "cycada_pixel_feat"): "85.2 37.2 76.5 21.8 15.0 23.8 22.9 21.5 80.5 31.3 60.7 50.5 9.0 76.9 17.1 28.2 4.5 9.8 0.0 35.4 73.8 83.6",
    ("fcn8s_vgg16", "oracle"): "96.4 74.5 87.1 35.3 37.8 36.4 46.9 60.1 89.0 54.3 89.8 65.6 35.9 89.4 38.6 64.1 38.6 40.5 65.1 60.3 87.6 93.1",
    ("drn26", "source_only"): "42.7 26.3 51.7 5.5 6.8 13.8 23.6 6.9 75.5 11.5 36.8 49.3 0.9 46.7 3.4 5.0 0.0 5.0 1.4 21.7 47.4 62.5",
    ("drn26", "cycada_feat"): "78.1 31.1 71.2 10.3 14.1 29.8 28.1 20.9 74.0 16.8 51.9 53.6 6.1 65.4 8.2 20.9 1.8 13.9 5.9 31.7 67.4 78.4",
    ("drn26", "cycada_pixel"): "63.7 24.7 69.3 21.2 17.0 30.3 33.0 32.0 80.5 25.3 62.3 62.0 15.1 73.1 19.8 23.6 5.5 16.2 28.7 37.0 63.8 75.4",
    ("drn26", "cycada_pixel_feat"): "79.1 33.1 77.9 23.4 17.3 32.1 33.3 31.8 81.5 26.7 69.0 62.8 14.7 74.5 20.9 25.6 6.9 18.8 20.4 39.5 72.4 82.3",
    ("drn26", "oracle"): "97.3 79.8 88.6 32.5 48.2 56.3 63.6 73.3 89.0 58.9 93.0 78.2 55.2 92.2 45.0 67.3 39.6 49.9 73.6 67.4 89.6 94.3",
}


# Calibrator Table 2, GTA5 -> Cityscapes with DRN-26: "Ours" calibrates CyCADA's released DRN-26, which was
# trained on CycleGAN-stylised GTA5 (so our "CycleGAN + calibrator" row); its source-only row equals Table 4's.
_CAL_T2 = {
    ("drn26", "cycada_calibrator"): "83.5 35.2 79.9 24.6 16.2 32.8 33.1 31.8 81.7 29.2 66.3 63.0 14.3 81.8 21.0 26.5 8.5 16.7 24.0 40.5 75.1 84.0",
}


class PaperSegmentation(NamedTuple):
    """A segmentation row of a paper: per-class IoUs (%), mIoU, fwIoU, pixel accuracy and its table."""

    per_class: tuple[float, ...]
    miou: float
    fwiou: float
    pixel_acc: float
    table: str

    @property
    def value(self) -> str:
        return f"{self.miou} / {self.fwiou} / {self.pixel_acc}"


def paper_segmentation(source: str, target: str, method: str, backbone_arch: str) -> PaperSegmentation | None:
    """CyCADA Table 4 or Calibrator Table 2 where the setting matches (GTA5 -> Cityscapes, FCN8s or DRN-26)."""
    if (source, target) != ("gta5", "cityscapes"):
        return None
    for table, name in ((_T4, "CyCADA Table 4"), (_CAL_T2, "Calibrator Table 2")):
        if (backbone_arch, method) in table:
            vals = tuple(float(v) for v in table[(backbone_arch, method)].split())
            return PaperSegmentation(vals[:19], vals[19], vals[20], vals[21], f"{name} (mIoU / fwIoU / pixel acc)")
    return None


def paper_values(source: str, target: str, method: str, backbone_arch: str) -> tuple[PaperValue, ...]:
    seg = paper_segmentation(source, target, method, backbone_arch)
    if seg is not None:
        return (PaperValue(seg.value, seg.table),)
    if (source, target) == ("gta5", "cityscapes") and method == "label_bound":  # no model: any backbone
        return (PaperValue("55 (IoU); 82 (pixel acc); 72 (class acc)", "GAM Table 3 (oracle, source distribution)"),)
    if (source, target) == ("gta5", "cityscapes") and backbone_arch == "erfnet_encoder" and method in _GAM_T3:
        return (PaperValue(_GAM_T3[method], "GAM Table 3 (IoU, ERFNet)"),)
    if backbone_arch not in PAPER_BACKBONES:
        return ()
    return PAPER.get((source, target, method), ())
