"""Unsupervised validators on hand-made tensors, against values worked out by hand (and pytorch-adapt's where it
imports)."""

import math

import numpy as np
import pytest
import torch

from pipeline_lib import validators as v

CONFIDENT_DIVERSE = torch.tensor([[100.0, 0.0], [0.0, 100.0]])
COLLAPSED = torch.tensor([[100.0, 0.0], [100.0, 0.0]])
UNSURE = torch.zeros(2, 2)


def test_entropy_is_minus_the_mean_prediction_entropy():
    assert v.entropy(UNSURE) == pytest.approx(-math.log(2))
    assert v.entropy(CONFIDENT_DIVERSE) == pytest.approx(0.0, abs=1e-6)


def test_im_is_the_mean_predictions_entropy_minus_the_mean_entropy():
    assert v.information_maximization(CONFIDENT_DIVERSE) == pytest.approx(math.log(2))
    assert v.information_maximization(COLLAPSED) == pytest.approx(0.0, abs=1e-6)
    assert v.information_maximization(UNSURE) == pytest.approx(0.0, abs=1e-6)


def test_bnm_is_the_nuclear_norm_of_the_predictions_over_their_number():
    assert v.batch_nuclear_norm(CONFIDENT_DIVERSE) == pytest.approx(1.0)       # the identity: norm 2, 2 samples
    assert v.batch_nuclear_norm(COLLAPSED) == pytest.approx(math.sqrt(2) / 2)  # [[1, 0], [1, 0]]: norm sqrt(2)


def test_snd_is_the_mean_entropy_of_each_samples_softmaxed_similarities_to_the_others():
    features = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # cosine: a-b 1, a-c 0, b-c 0
    p = math.e / (1 + math.e)                                       # temperature 1: softmax([1, 0])
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert v.soft_neighborhood_density(features, temperature=1.0) == pytest.approx((2 * h + math.log(2)) / 3)
    assert v.soft_neighborhood_density(features, temperature=1.0, chunk=1) == pytest.approx((2 * h + math.log(2)) / 3)
    with pytest.raises(ValueError, match="two samples"):
        v.soft_neighborhood_density(features[:1])


def test_dev_risk_uses_the_weights_as_a_control_variate():
    # w = [1, 2, 3, 2], l = [1, 0, 1, 0]: mean(w l) = 1, Cov(w l, w) = 2/3, Var(w) = 2/3, eta = -1, mean(w) = 2
    assert v.dev_risk(np.array([1.0, 2.0, 3.0, 2.0]), np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.0)
    assert v.dev_risk(np.ones(4), np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(0.5)  # equal weights: mean loss


def test_dev_weights_follow_the_target_density():
    rng = np.random.default_rng(0)
    source, target = rng.normal(0, 1, (400, 2)), rng.normal(1, 1, (400, 2))
    probes = np.array([[-2.0, -2.0], [3.0, 3.0]])
    low, high = v.importance_weights(source, target, probes)
    assert low < 0.2 < 5 < high  # far on the source side, far on the target side
    logits, labels = torch.tensor([[3.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0])
    assert v.deep_embedded_validation(source, target, probes, logits, labels) < 0  # minus a risk


def test_class_ami_is_one_when_predictions_follow_the_feature_clusters_and_zero_when_collapsed():
    rng = np.random.default_rng(0)
    features = torch.tensor(np.r_[rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))], dtype=torch.float32)
    following = torch.tensor([[5.0, 0.0]] * 20 + [[0.0, 5.0]] * 20)
    assert v.class_ami(features, following) == pytest.approx(1.0)
    assert v.class_ami(features, torch.tensor([[5.0, 0.0]] * 40)) == pytest.approx(0.0, abs=1e-9)


def test_source_accuracy():
    assert v.source_accuracy(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1, 1])) == \
        pytest.approx(2 / 3)


def test_a_collapsed_model_misleads_entropy_but_not_im_or_bnm():
    """Musgrave et al. 2022 (and the entropy-minimisation literature): a model that puts every target image in one
    class with confidence has the lowest entropy, so entropy ranks it first; IM and BNM, which reward diverse
    predictions, rank a confident, diverse model above it."""
    rng = torch.Generator().manual_seed(0)
    labels = torch.arange(100) % 4
    good = torch.nn.functional.one_hot(labels, 4).float() * 6 + torch.randn(100, 4, generator=rng)  # right, unsure-ish
    collapsed = torch.tensor([20.0, 0.0, 0.0, 0.0]).repeat(100, 1)                             # one class, certain
    assert v.entropy(collapsed) > v.entropy(good)
    assert v.information_maximization(good) > v.information_maximization(collapsed)
    assert v.batch_nuclear_norm(good) > v.batch_nuclear_norm(collapsed)


def test_segmentation_pixels_are_samples():
    logits = torch.zeros(2, 3, 4, 5)
    logits[:, 0] = 10
    assert v.pixels_as_samples(logits).shape == (40, 3)
    assert v.information_maximization(logits) == pytest.approx(0.0, abs=1e-4)  # every pixel the same class


@pytest.mark.parametrize("name", ["entropy", "im", "bnm", "snd"])
def test_parity_with_pytorch_adapt_where_it_imports(name):
    validators = pytest.importorskip("pytorch_adapt.validators", reason="pytorch-adapt does not import here")
    logits = torch.randn(50, 5, generator=torch.Generator().manual_seed(1))
    theirs = {"entropy": lambda: validators.EntropyValidator()(target_train={"logits": logits}),
              "im": lambda: validators.IMValidator()(target_train={"logits": logits}),
              "bnm": lambda: validators.BNMValidator()(target_train={"logits": logits}),
              "snd": lambda: validators.SNDValidator()(target_train={"preds": logits.softmax(1)})}[name]()
    ours = {"entropy": lambda: v.entropy(logits), "im": lambda: v.information_maximization(logits),
            "bnm": lambda: v.batch_nuclear_norm(logits),
            "snd": lambda: v.soft_neighborhood_density(logits.softmax(1))}[name]()
    assert ours == pytest.approx(theirs, rel=1e-5)
