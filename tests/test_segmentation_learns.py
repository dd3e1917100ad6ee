"""Segmentation learns on a real frame and eval mode keeps it (issue 14).

The one real Cityscapes frame in ``../shared/data`` (256x128, read through the pipeline's own Cityscapes
reader and label mapping) is learnt from random crops with the demo profile's training settings, then
scored whole in eval mode, as the evaluate stage scores frames. Before the precise-BN pass the same run
scored 3.4 mIoU in eval mode (every pixel 'road') against 56 in train mode. Skipped when the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from pipeline_lib.config import load_params
from pipeline_lib.domains.frames import frame_transform
from pipeline_lib.domains.segmentation import CityscapesDataset
from pipeline_lib.metrics import confusion_matrix, segmentation_scores
from pipeline_lib.models import build_backbone
from pipeline_lib.training import train_supervised

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "cityscapes_sample"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SAMPLE.is_dir(), reason="../shared/data/cityscapes_sample not available")]


class Crops(Dataset):
    """``n`` random training crops of one frame."""

    def __init__(self, frame: Dataset, n: int, transform) -> None:
        self.image, self.mask = frame[0]
        self.n, self.transform = n, transform

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return self.transform(self.image, self.mask)


def test_lraspp_learns_a_real_frame_from_crops_and_scores_it_whole_in_eval_mode(tmp_path):
    params = load_params(ROOT / "params.yaml")  # the demo profile: LR-ASPP from scratch, 128x128 crops
    settings = params.track("street").train_supervised.model_copy(update={"epochs": 4})
    frame = CityscapesDataset(SAMPLE, split="val")
    torch.manual_seed(0)
    model = build_backbone(params.backbones["street"], num_classes=19)
    train_supervised(model, Crops(frame, 200, frame_transform(settings, train=True, flip=True)), settings,
                     torch.device("cpu"), torch.Generator().manual_seed(0), tmp_path / "m.pt", {})
    image, mask = frame_transform(None, train=False)(*frame[0])
    model.eval()
    with torch.no_grad():
        pred = model(image[None]).argmax(1)[0]
    scores = segmentation_scores(np.asarray(confusion_matrix(pred, mask, 19)), list(range(19)))
    assert scores["pixel_acc"] > 0.85, scores["pixel_acc"]
    assert scores["miou"] > 0.35, scores["miou"]
