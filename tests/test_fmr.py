"""Feature-map regression: the loss, its gradient scope, the layer weightings, the training loop and the inversion."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib.errors import PipelineError
from pipeline_lib.methods.fmr import PairedSet, gram, invert_features, regress_features, regression_loss, same_crop
from pipeline_lib.methods.fmr_params import RegressParams, variant_weights
from pipeline_lib.models.lenet import LeNet

CPU = torch.device("cpu")
LAYERS = ["conv1", "conv2"]
CFG = RegressParams(lr=1e-3, batch_size=8, epochs=2, steps_per_epoch=3)


def _images(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def test_the_loss_is_zero_for_the_same_network_on_the_same_images():
    torch.manual_seed(0)
    model, x = LeNet(10, 3, 32).eval(), _images()
    feats = model.forward_features(x, LAYERS)
    total, parts = regression_loss(feats, model.forward_features(x, LAYERS), {"conv1": 0.2, "conv2": 0.9})
    assert total.item() == 0.0 and all(p.item() == 0.0 for p in parts.values())
    other, _ = regression_loss(feats, model.forward_features(-x, LAYERS), {"conv1": 0.2, "conv2": 0.9})
    assert other.item() > 0


def test_the_loss_is_the_weighted_sum_of_mean_squared_differences():
    a = {"l1": torch.zeros(2, 3), "l2": torch.zeros(4)}
    b = {"l1": torch.ones(2, 3), "l2": torch.full((4,), 2.0)}
    total, parts = regression_loss(a, b, {"l1": 0.5, "l2": 2.0})
    assert parts["l1"].item() == 1.0 and parts["l2"].item() == 4.0 and total.item() == 0.5 + 8.0
    total_sum, _ = regression_loss(a, b, {"l1": 0.5, "l2": 2.0}, reduction="sum")
    assert total_sum.item() == 0.5 * 6 + 2.0 * 16


@pytest.mark.parametrize("layer,reached", [("conv1", {"conv1"}), ("conv2", {"conv1", "conv2"}),
                                           ("fc1", {"conv1", "conv2", "fc1"})])
def test_each_layers_loss_reaches_only_the_layers_below_it(layer, reached):
    torch.manual_seed(0)
    h1, h2 = LeNet(10, 3, 32).eval(), LeNet(10, 3, 32).eval()
    x = _images(4)
    loss, _ = regression_loss(h1.forward_features(x, [layer]), h2.forward_features(x, [layer]), {layer: 1.0})
    loss.backward()
    for name, stage in h2.stages.items():
        got = [p.grad is not None and p.grad.abs().sum().item() > 0 for p in stage.parameters()]
        assert all(got) if name in reached else not any(got), name


def test_the_variants_weights():
    five = ["p1", "p2", "p3", "p4", "p5"]
    paper = (0.2, 0.4, 0.6, 0.8, 0.9)
    assert variant_weights(five, "pool5", paper) == {"p5": 1.0}
    assert variant_weights(five, "inc", paper) == dict(zip(five, paper))
    assert variant_weights(five, "dec", paper) == dict(zip(five, paper[::-1]))
    two = variant_weights(LAYERS, "inc", paper)  # resampled over the backbone's layers, ends kept
    assert two == pytest.approx({"conv1": 0.2, "conv2": 0.9})
    with pytest.raises(PipelineError, match="has 2 post-pooling"):
        variant_weights(LAYERS, "pool3", paper)
    with pytest.raises(PipelineError, match="unknown regression variant"):
        variant_weights(LAYERS, "all", paper)


def test_pairs_must_align_and_are_cropped_alike():
    with pytest.raises(PipelineError, match="differ in length"):
        PairedSet(TensorDataset(_images(4)), TensorDataset(_images(5)))
    x1 = torch.arange(2 * 3 * 8 * 10, dtype=torch.float32).reshape(2, 3, 8, 10)
    for seed in range(5):
        a, b = same_crop(x1, x1 + 1000, (4, 6), True, torch.Generator().manual_seed(seed))
        assert a.shape == (2, 3, 4, 6) and torch.equal(b - 1000, a)


def test_training_moves_only_the_layers_below_the_regressed_one_and_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    h1 = LeNet(10, 3, 32).eval()
    before = {k: v.clone() for k, v in h1.state_dict().items()}
    x1 = _images(32)
    pairs = PairedSet(TensorDataset(x1), TensorDataset(x1.flip(-1) * 0.5))  # a shift that keeps the content
    cfg = CFG.model_copy(update={"epochs": 4})
    h2, result = regress_features(h1, pairs, {"conv1": 1.0}, cfg, CPU, 0, tmp_path / "h2.pt", None)
    assert all(torch.equal(before[k], v) for k, v in h1.state_dict().items())  # H1 stays frozen
    assert not torch.equal(h2.stages["conv1"][0].weight, h1.stages["conv1"][0].weight)
    for name in ("conv2", "fc1", "logits"):  # above the regressed layer: H1's weights exactly
        for a, b in zip(h2.stages[name].parameters(), h1.stages[name].parameters()):
            assert torch.equal(a, b), name
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0] and "loss_conv1" in result.history[0]


def test_on_a_resnet_the_regression_trains_the_stages_up_to_the_regressed_one_only(tmp_path):
    from pipeline_lib.models.resnet import ResNet
    torch.manual_seed(0)
    h1 = ResNet("resnet18", 10).eval()
    x1 = _images(16)
    pairs = PairedSet(TensorDataset(x1), TensorDataset(x1.flip(-1) * 0.5))
    h2, result = regress_features(h1, pairs, {"layer2": 1.0}, CFG, CPU, 0, tmp_path / "h2.pt", None)
    assert not torch.equal(h2.stages["layer2"][0].conv1.weight, h1.stages["layer2"][0].conv1.weight)
    for name in ("layer3", "layer4", "logits"):  # above the regressed layer: H1's weights exactly
        for a, b in zip(h2.stages[name].parameters(), h1.stages[name].parameters()):
            assert torch.equal(a, b), name
    assert "loss_layer2" in result.history[0]


def test_inversion_starts_from_noise_and_matches_the_features(tmp_path):
    torch.manual_seed(0)
    model, x = LeNet(10, 3, 32).eval(), _images(2, seed=7)
    noise = invert_features(model, x, LAYERS, LAYERS, steps=0, lr=0.5, momentum=0.9, style_weight=1.0, seed=0,
                            device=CPU)
    seen = invert_features(model, x, LAYERS, LAYERS, steps=60, lr=0.5, momentum=0.9, style_weight=1.0, seed=0,
                           device=CPU)
    assert seen.shape == x.shape and seen.min() >= -1 and seen.max() <= 1

    def distance(img: torch.Tensor) -> float:
        with torch.no_grad():
            return regression_loss(model.forward_features(x, LAYERS), model.forward_features(img, LAYERS),
                                   {"conv1": 1.0, "conv2": 1.0})[0].item()
    assert distance(seen) < 0.5 * distance(noise)
    assert torch.equal(seen, invert_features(model, x, LAYERS, LAYERS, 60, 0.5, 0.9, 1.0, 0, CPU))  # seeded


def test_gram_is_normalised_and_symmetric():
    f = torch.randn(2, 4, 3, 5)
    g = gram(f)
    assert g.shape == (2, 4, 4) and torch.allclose(g, g.transpose(1, 2))
    assert torch.allclose(g[0, 1, 2], (f[0, 1] * f[0, 2]).sum() / (4 * 3 * 5))
