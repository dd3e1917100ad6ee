"""Segmentation evaluation: the Cityscapes protocol (infer smaller, score at full label resolution)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline_lib.domains.frames import ArrayFrames, frame_transform
from pipeline_lib.evaluation import evaluate_segmentation


class _LeftRight(nn.Module):
    """Predicts class 1 where the red channel is bright, else class 0; records input sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return torch.cat([-x[:, :1], x[:, :1]], dim=1) * 10


def _frames(n: int, h: int, w: int) -> ArrayFrames:
    images = np.zeros((n, h, w, 3), np.uint8)
    images[:, :, w // 2:, 0] = 255  # right half red
    masks = np.zeros((n, h, w), np.uint8)
    masks[:, :, w // 2:] = 1
    masks[:, 0, :] = 255  # first row ignored
    return ArrayFrames(images, masks, frame_transform(None, train=False))


def test_inferred_at_max_width_and_scored_at_label_resolution():
    model = _LeftRight()
    conf, shown = evaluate_segmentation(model, _frames(3, 32, 64), num_classes=2, device=torch.device("cpu"),
                                        batch_size=2, infer_max_width=16, preview=2)
    assert model.seen == [(8, 16), (8, 16)]  # 2 + 1 frames, each scaled down to width 16
    assert conf.sum() == 3 * 31 * 64  # every scored full-resolution pixel, the ignored row skipped
    assert np.trace(conf.numpy()) / conf.sum() > 0.95  # upsampled logits land on the right pixels
    assert shown["images"].shape == (2, 32, 64, 3) and shown["predictions"].shape == (2, 32, 64)
    assert (shown["labels"][:, 0] == 255).all()


def test_frames_of_other_sizes_are_batched_apart():
    model = _LeftRight()
    small, large = _frames(1, 16, 32), _frames(2, 32, 64)
    data = torch.utils.data.ConcatDataset([large, small])
    conf, _ = evaluate_segmentation(model, data, num_classes=2, device=torch.device("cpu"), batch_size=4)
    assert sorted(model.seen) == [(16, 32), (32, 64)]
    assert conf.sum() == 2 * 31 * 64 + 15 * 32


def test_the_progress_bar_counts_frames_against_the_set_size(capsys):
    """The bar shows a total (the frames), also when a batch of mixed sizes splits into several model calls."""
    data = torch.utils.data.ConcatDataset([_frames(2, 32, 64), _frames(1, 16, 32)])
    evaluate_segmentation(_LeftRight(), data, num_classes=2, device=torch.device("cpu"), batch_size=4)
    bar = capsys.readouterr().err
    assert "/3 [" in bar and "frame/s" in bar and "batch" not in bar, bar  # a total: 3 frames


class _Brightness(nn.Module):
    """Two classes: 1 where the image's mean is above 0 (images in [-1, 1])."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-m, m], dim=1)


def test_classification_keeps_the_first_test_images_with_their_predictions():
    from pipeline_lib.evaluation import evaluate_classification

    images = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 1, 4, 4).contiguous()
    labels = torch.tensor([0, 0, 1, 1, 0, 1])
    conf, shown = evaluate_classification(_Brightness(), images, labels, 2, torch.device("cpu"), batch_size=4,
                                          preview=4)
    assert conf.tolist() == [[2, 1], [1, 2]]
    assert shown["predictions"].tolist() == [0, 0, 0, 1] and shown["labels"].tolist() == [0, 0, 1, 1]
    assert shown["images"].shape == (4, 4, 4, 1) and shown["images"].dtype == np.uint8
    assert shown["images"][0].max() == 0 and shown["images"][3].min() > 127


class _Brightness(nn.Module):
    """Class 1 for images brighter than mid-grey, else 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([-m, m], dim=1)


def test_content_check_flags_a_translation_that_loses_over_a_third_of_the_metric():
    from pipeline_lib.evaluation import content_check
    labels = torch.tensor([0, 1] * 6)
    originals = [(torch.full((1, 4, 4), 0.5 if y else -0.5), y) for y in labels]
    kept = [(x * 0.9, y) for x, y in originals]  # a mild style change: every prediction survives
    broken = [(x.abs() if i < 5 else x, y) for i, (x, y) in enumerate(originals)]  # 3 of 12 labels lost (class 0 -> 1)
    ruined = [(x.abs(), y) for x, y in originals]  # every image bright: half the labels lost
    args = (2, torch.device("cpu"), 4)
    check = content_check(_Brightness(), "classification", originals, kept, *args)
    assert check == {"metric": "accuracy", "frames": 12, "source": 1.0, "translated": 1.0, "kept": 1.0,
                     "kept_min": 2 / 3, "flagged": False}
    check = content_check(_Brightness(), "classification", originals, broken, *args)
    assert check["translated"] == 0.75 and not check["flagged"]
    check = content_check(_Brightness(), "classification", originals, ruined, *args)
    assert check["translated"] == 0.5 and check["kept"] == 0.5 and check["flagged"]


def test_content_check_scores_segmentation_frames_by_miou():
    from pipeline_lib.evaluation import content_check
    frames = _frames(2, 8, 16)
    originals = [frames[i] for i in range(2)]
    swapped = [(-x, m) for x, m in originals]  # red and black exchanged: every scored pixel wrong
    check = content_check(_LeftRight(), "segmentation", originals, swapped, 2, torch.device("cpu"), 2, [0, 1])
    assert check["metric"] == "miou" and check["source"] == 1.0 and check["translated"] == 0.0 and check["flagged"]
