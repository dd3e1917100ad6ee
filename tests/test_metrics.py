import numpy as np
import pytest
import torch

from pipeline_lib.metrics import (accuracy, confusion_matrix, frequency_weighted_iou, mean_iou, mean_std,
                                  per_class_iou, pixel_accuracy)


def test_confusion_counts_rows_true_columns_predicted():
    target = torch.tensor([0, 0, 1, 2, 2, 2])
    pred = torch.tensor([0, 1, 1, 2, 0, 2])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert accuracy(conf.numpy()) == pytest.approx(4 / 6)


def test_ignore_label_is_skipped_and_out_of_range_labels_fail():
    target = torch.tensor([[0, 255], [1, 255]])
    pred = torch.tensor([[0, 1], [0, 1]])
    assert confusion_matrix(pred, target, 2).sum() == 2
    with pytest.raises(ValueError, match="label ids must lie in 0..1"):
        confusion_matrix(torch.tensor([0]), torch.tensor([7]), 2)


def test_segmentation_metrics_by_hand():
    conf = np.array([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    # IoU_0 = 3 / (4 + 5 - 3), IoU_1 = 4 / (6 + 5 - 4), class 2 absent -> NaN
    iou = per_class_iou(conf)
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(4 / 7) and np.isnan(iou[2])
    assert mean_iou(conf) == pytest.approx((0.5 + 4 / 7) / 2)
    assert frequency_weighted_iou(conf) == pytest.approx((4 * 0.5 + 6 * 4 / 7) / 10)
    assert pixel_accuracy(conf) == pytest.approx(0.7)


def test_mean_std():
    assert mean_std([90.0]) == (90.0, 0.0)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)



def test_segmentation_scores_on_a_class_subset():
    from pipeline_lib.metrics import segmentation_scores
    conf = np.zeros((4, 4), int)
    conf[0, 0], conf[1, 1], conf[2, 2], conf[3, 0] = 4, 2, 2, 2  # class 3 (unscored) predicted as 0
    full = segmentation_scores(conf)
    sub = segmentation_scores(conf, eval_classes=[0, 1, 2])  # SYNTHIA-style: score 3 classes only
    assert full["iou"][0] == pytest.approx(4 / 6) and full["iou"][3] == 0.0
    assert sub["iou"] == [1.0, 1.0, 1.0] and sub["miou"] == 1.0 and sub["pixel_acc"] == 1.0
    assert full["pixel_acc"] == pytest.approx(0.8)


def test_label_distribution_bound_by_hand():
    from pipeline_lib.metrics import label_distribution_bound
    # source: 60% road, 40% sky; target: 30% road, 50% sky, 20% car (never seen in the source)
    bound = label_distribution_bound([60, 40, 0], [30, 50, 20])
    # predicted counts on the target's 100 pixels: road 60, sky 40, car 0
    assert bound["iou"] == pytest.approx([30 / 60, 40 / 50, 0.0])
    assert bound["miou"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert bound["pixel_acc"] == pytest.approx(0.7) and bound["class_acc"] == pytest.approx((1 + 0.8 + 0) / 3)
    same = label_distribution_bound([2, 3, 5], [20, 30, 50])
    assert same["miou"] == pytest.approx(1.0) and same["pixel_acc"] == pytest.approx(1.0)
    sub = label_distribution_bound([60, 40, 0], [30, 50, 20], eval_classes=[0, 1])
    assert len(sub["iou"]) == 2 and sub["pixel_acc"] == pytest.approx((30 + 32) / 80)  # predicted 48 road, 32 sky
