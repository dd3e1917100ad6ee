import pytest
import torch
from torch import nn

from pipeline_lib.losses import (cycle_loss, discriminator_accuracy, discriminator_loss, gan_loss,
                                 semantic_consistency_loss, weight_drift)


class FixedLabeller(nn.Module):
    """A confident 'classifier': the class is which channel has the largest mean, scaled up."""

    def forward(self, x):
        return 50.0 * x.mean(dim=(2, 3))


def test_gan_loss_by_hand():
    scores = torch.zeros(2, 1, 3, 3)  # sigmoid(0) = 0.5 everywhere
    assert gan_loss(scores, True).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert gan_loss(torch.ones(4, 1), True, "lsgan").item() == 0.0
    assert gan_loss(torch.ones(4, 1), False, "lsgan").item() == 1.0
    # a confident, correct discriminator has a small loss; fooled, a large one
    assert discriminator_loss(torch.full((8, 1), 9.0), torch.full((8, 1), -9.0)).item() < 1e-3
    assert discriminator_loss(torch.full((8, 1), -9.0), torch.full((8, 1), 9.0)).item() > 8
    with pytest.raises(ValueError, match="unknown GAN mode"):
        gan_loss(scores, True, "wgan")


def test_discriminator_accuracy_counts_every_location():
    real = torch.tensor([[1.0], [1.0], [-1.0], [1.0]])
    fake = torch.tensor([[-1.0], [-1.0], [-1.0], [1.0]])
    assert discriminator_accuracy(real, fake) == pytest.approx(6 / 8)
    maps_real = torch.ones(2, 1, 4, 4)
    maps_fake = -torch.ones(2, 1, 4, 4)
    maps_fake[0, 0, 0] = 1.0  # 4 of 64 locations wrong
    assert discriminator_accuracy(maps_real, maps_fake) == pytest.approx(60 / 64)


def test_cycle_loss_is_l1():
    a = torch.zeros(2, 3, 4, 4)
    assert cycle_loss(a, a).item() == 0.0
    assert cycle_loss(a + 0.5, a).item() == pytest.approx(0.5)


def test_semantic_loss_is_zero_when_translation_keeps_predictions_and_positive_otherwise():
    labeller = FixedLabeller()
    x = torch.zeros(4, 3, 8, 8)
    for i in range(4):
        x[i, i % 3] = 1.0  # image i is "class" i % 3
    assert semantic_consistency_loss(labeller, x.clone(), x).item() == pytest.approx(0.0, abs=1e-6)
    brighter = x * 0.8 + 0.05  # style change that keeps the argmax
    assert semantic_consistency_loss(labeller, brighter, x).item() < 1e-4
    flipped = x.roll(1, dims=1)  # a translation that changes the class of every image
    assert semantic_consistency_loss(labeller, flipped, x).item() > 10


def test_semantic_loss_with_given_targets_uses_them_and_skips_ignored_pixels():
    labeller = FixedLabeller()
    x = torch.zeros(3, 3, 8, 8)
    for i in range(3):
        x[i, i] = 1.0  # image i is class i
    right, wrong = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    assert semantic_consistency_loss(labeller, x, x, right).item() == pytest.approx(0.0, abs=1e-6)
    assert semantic_consistency_loss(labeller, x, x, wrong).item() > 10  # the prediction would have given 0
    ignored = torch.tensor([0, 255, 255])  # segmentation's ignore id: only image 0 counts
    assert semantic_consistency_loss(labeller, x, x.roll(1, 0), ignored).item() == pytest.approx(0.0, abs=1e-6)


def test_semantic_loss_trains_the_translation_not_the_pseudo_label():
    labeller = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    original = torch.randn(5, 3, 2, 2)
    translated = original.clone().requires_grad_(True)
    semantic_consistency_loss(labeller, translated, original).backward()
    assert translated.grad is not None and translated.grad.abs().sum() > 0


def test_weight_drift_is_zero_at_start_and_grows_as_weights_move():
    model = nn.Linear(3, 2)
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert weight_drift(model, reference).item() == 0.0
    with torch.no_grad():
        model.weight += 0.1
    small = weight_drift(model, reference).item()
    assert small == pytest.approx(0.01)  # per-tensor mean: weight 0.01, bias 0
    assert weight_drift(model, reference, "sum").item() == pytest.approx(6 * 0.01)
    with torch.no_grad():
        model.weight += 0.1
    assert weight_drift(model, reference).item() > small
    with pytest.raises(ValueError, match="names none"):
        weight_drift(model, {"other": torch.zeros(1)})


def test_weight_drift_per_tensor_mean_does_not_grow_with_the_layer_size():
    small, big = nn.Linear(4, 4), nn.Linear(400, 400)
    for model in (small, big):
        reference = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            model.weight += 0.1
        model.drift = weight_drift(model, reference).item()
    assert small.drift == pytest.approx(big.drift)
