"""Batch-norm statistics after training (issue 14): eval mode must score what the trained net scores.

torchvision's MobileNetV3 averages its running statistics with momentum 0.01, so after a short run of a
fast-changing net they describe an early net and eval mode collapses to one class. Every stage that trains
batch-norm layers ends with a precise-BN pass (:func:`recompute_batchnorm`)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from pipeline_lib.config import TrainSupervisedParams
from pipeline_lib.domains.scenes import build_scenes
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.models.segmenters import SEGMENTERS
from pipeline_lib.training import batchnorm_layers, recompute_batchnorm, train_supervised

NUM_CLASSES = 19


@pytest.fixture(scope="module")
def frames() -> tuple[torch.Tensor, torch.Tensor]:
    images, masks, _, _ = build_scenes("game", 4, 1, seed=0, height=64, width=64)
    x = torch.tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x, torch.tensor(masks).long()


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: bool) -> float:
    model = copy.deepcopy(model).train(train_mode)  # a train-mode pass must not touch the model scored after
    with torch.no_grad():
        pred = model(x).argmax(1)
    scored = y != 255
    return ((pred == y) & scored).sum().item() / scored.sum().item()


@pytest.mark.parametrize("arch,steps", [("lraspp_mobilenet_v3", 30), ("drn26", 20), ("erfnet", 40),
                                        ("erfnet_encoder", 40)])
def test_eval_mode_scores_like_training_after_train_supervised(arch, steps, frames, tmp_path):
    torch.manual_seed(0)
    model = SEGMENTERS[arch](NUM_CLASSES)
    assert batchnorm_layers(model)
    x, y = frames
    params = TrainSupervisedParams(lr=1e-3, batch_size=2, epochs=steps // 2, batchnorm_batches=2)
    train_supervised(model, TensorDataset(x, y), params, torch.device("cpu"), torch.Generator().manual_seed(0),
                     tmp_path / "m.pt", {})
    trained = _accuracy(model, x, y, train_mode=True)
    assert trained > 0.6, f"{arch} did not fit 4 frames in {steps} steps ({trained:.3f})"
    evaluated = _accuracy(model, x, y, train_mode=False)
    assert evaluated > trained - 0.05, f"{arch}: eval mode {evaluated:.3f} vs batch statistics {trained:.3f}"


def test_fcn8s_has_no_batchnorm():
    assert not batchnorm_layers(SEGMENTERS["fcn8s_vgg16"](NUM_CLASSES))


def test_recompute_is_the_plain_average_of_the_batch_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.01), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    batches = [torch.randn(2, 3, 5, 5) * (i + 1) + i for i in range(3)]
    assert recompute_batchnorm(net, iter(batches), torch.device("cpu"), max_batches=3) == 3
    with torch.no_grad():
        h = [net[0](b) for b in batches]
    means = torch.stack([t.mean((0, 2, 3)) for t in h]).mean(0)
    variances = torch.stack([t.var((0, 2, 3), unbiased=True) for t in h]).mean(0)
    torch.testing.assert_close(net[1].running_mean, means)
    torch.testing.assert_close(net[1].running_var, variances)
    assert net[1].momentum == 0.01 and net[3].momentum == 0.1
    assert not any(m.training for m in net.modules())  # modes restored


def test_recompute_leaves_unreached_layers_and_nets_without_batchnorm_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)).train()
    net[3].running_mean.fill_(0.5)
    before = copy.deepcopy(net[3].state_dict())
    recompute_batchnorm(net, [torch.randn(2, 3, 4, 4)], torch.device("cpu"), 5, forward=lambda x: net[1](net[0](x)))
    assert net[1].num_batches_tracked.item() == 1
    for key, value in before.items():
        assert torch.equal(net[3].state_dict()[key], value)
    assert all(m.training for m in net.modules())

    lenet = LeNet(num_classes=10, in_channels=1, image_size=28)
    assert not batchnorm_layers(lenet)
    state = copy.deepcopy(lenet.state_dict())

    def never():
        raise AssertionError("data read for a net without batch norm")
        yield

    assert recompute_batchnorm(lenet, never(), torch.device("cpu"), 5) == 0
    assert all(torch.equal(state[k], v) for k, v in lenet.state_dict().items())
