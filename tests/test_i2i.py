"""I2IAdapt (Murez et al., CVPR 2018): each loss on hand-made tensors, switched-off terms build and train nothing,
section 4's gradient routing, the networks, the params and a short training run."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from pipeline_lib.methods.i2i import (I2INets, classification_loss, critic_loss, critic_terms, forward,
                                     generator_loss, generator_terms, gradient_penalty, image_loss, needed,
                                     random_affine, train_i2i)
from pipeline_lib.methods.i2i_params import TERMS, I2IParams, SegI2IParams
from pipeline_lib.models.i2i import Decoders, ImageCritic, InputAdapter
from pipeline_lib.models.lenet import LeNet

SMALL = I2IParams(ngf=4, ndf=4, disc_hidden=8, batch_size=6, epochs=2, steps_per_epoch=2)
ALL = {t: 1.0 for t in TERMS}


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(4, 1, 32, 32, generator=g) * 2 - 1, torch.randint(10, (4,), generator=g),
            torch.rand(4, 1, 32, 32, generator=g) * 2 - 1)


def _nets(weights: dict[str, float]) -> I2INets:
    torch.manual_seed(0)
    return I2INets(LeNet(10, 1, 32), weights, SMALL, torch.zeros(1, 1, 32, 32))


def _only(**on: float) -> dict[str, float]:
    return {t: on.get(t, 0.0) for t in TERMS}


# ---- losses on hand-made tensors ----------------------------------------------------------------

def test_classification_and_image_losses_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    # -log(3/4) and -log(1/2), averaged
    assert (classification_loss(logits, torch.tensor([0, 1])).item()
            == pytest.approx((math.log(4 / 3) + math.log(2)) / 2))
    masks = torch.tensor([[[0, 255]]])  # segmentation: 255 is not scored
    assert classification_loss(torch.zeros(1, 2, 1, 2), masks).item() == pytest.approx(math.log(2))
    assert (image_loss(torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [0.5, 0.5]]]])).item()
            == pytest.approx(0.75))


def test_wasserstein_losses_by_hand():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.0, -2.0])
    assert critic_loss(real, fake).item() == pytest.approx(-1.0 - 2.0)  # E[fake] - E[real]
    assert critic_loss(real, fake, drift=0.1).item() == pytest.approx(-3.0 + 0.1 * (9 + 1) / 2)  # + eps E[d(real)^2]
    assert generator_loss(fake).item() == pytest.approx(1.0)


@pytest.mark.parametrize("norm", [1.0, 2.0, 0.5])
def test_gradient_penalty_of_a_linear_critic_is_its_slope_minus_one_squared(norm):
    critic = nn.Linear(6, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.full((1, 6), norm / math.sqrt(6)))  # ||grad|| = norm everywhere
    gp = gradient_penalty(critic, torch.randn(5, 6), torch.randn(5, 6), torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((norm - 1) ** 2, abs=1e-6)


def test_random_affine_is_seeded_keeps_shapes_and_is_the_identity_at_zero():
    x = _batch()[0]
    a = random_affine(x, 10, 0.1, torch.Generator().manual_seed(3))
    assert torch.equal(a, random_affine(x, 10, 0.1, torch.Generator().manual_seed(3)))
    assert a.shape == x.shape and not torch.allclose(a, x)
    assert torch.allclose(random_affine(x, 0, 0, torch.Generator().manual_seed(3)), x, atol=1e-5)
    # a shift brings in background (-1), never zero-grey
    shifted = random_affine(torch.ones(1, 1, 32, 32), 0, 0.25, torch.Generator().manual_seed(1))
    assert shifted.min().item() == pytest.approx(-1.0, abs=1e-5)


# ---- a zero lambda builds and trains nothing -----------------------------------------------------

def test_only_the_networks_the_active_terms_need_are_built():
    assert needed(_only(c=1)) == {"g_x": False, "g_y": False, "d_z": False, "d_xy": False}
    nets = _nets(_only(c=1, z=0.05))  # ADDA's special case: no decoders, no image critics
    assert nets.decoders is None and nets.d_x is None and nets.d_y is None and nets.d_z is not None
    nets = _nets(_only(c=1, id_y=0.1))  # DRCN's: g_y only
    assert set(nets.decoders.heads) == {"y"} and nets.d_z is None and nets.critics() == []
    nets = _nets(_only(c=1, z=0.05, tr=0.02, cyc=0.0))  # a lambda of 0 counts as off
    assert set(nets.decoders.heads) == {"x", "y"} and nets.d_x is not None


def test_switched_off_terms_give_none_of_their_networks_a_gradient():
    nets = _nets(ALL)  # every network exists ...
    x, c, y = _batch()
    weights = _only(c=1, id_y=0.1)  # ... but only c and id_Y are on
    fwd = forward(nets, x, y, weights)
    terms = generator_terms(nets, fwd, x, c, y, weights)
    assert set(terms) == {"c", "id_y"}
    sum(weights[k] * v for k, v in terms.items()).backward()
    for module in (nets.d_z, nets.d_x, nets.d_y, nets.decoders.heads["x"]):
        assert all(p.grad is None for p in module.parameters())
    assert all(p.grad is not None for p in nets.decoders.heads["y"].parameters())
    assert critic_terms(nets, fwd, x, y, weights, 10.0, torch.Generator()) == {}


# ---- section 4's gradient routing ----------------------------------------------------------------

def test_the_feature_critic_reaches_the_encoder_only_through_target_images():
    nets = _nets(_only(c=1, z=1))
    x, c, y = _batch()
    x.requires_grad_(True), y.requires_grad_(True)
    weights = _only(z=1)
    terms = generator_terms(nets, forward(nets, x, y, weights), x, c, y, weights)
    gx, gy = torch.autograd.grad(terms["z"], [x, y], allow_unused=True)
    assert (gx is None or gx.abs().max() == 0) and gy.abs().max() > 0


def test_the_both_domains_option_also_routes_the_feature_critic_through_source_images():
    """``z_routing: both`` (not the paper's): Q_z is E[d(f(x))] - E[d(f(y))], so source images get a gradient."""
    nets = _nets(_only(c=1, z=1))
    x, c, y = _batch()
    x.requires_grad_(True), y.requires_grad_(True)
    weights = _only(z=1)
    fwd = forward(nets, x, y, weights)
    terms = generator_terms(nets, fwd, x, c, y, weights, "both")
    gx, gy = torch.autograd.grad(terms["z"], [x, y])
    assert gx.abs().max() > 0 and gy.abs().max() > 0
    expected = nets.d_z(fwd.z_x).mean() - nets.d_z(fwd.z_y).mean()
    assert torch.allclose(terms["z"], expected)


def test_translation_classification_reaches_f_and_h_never_g_y():
    nets = _nets(_only(c=1, trc=1))
    x, c, y = _batch()
    x.requires_grad_(True)
    weights = _only(trc=1)
    fwd = forward(nets, x, y, weights)
    terms = generator_terms(nets, fwd, x, c, y, weights)
    assert set(terms) == {"trc"}
    terms["trc"].backward()
    assert all(p.grad is None for p in nets.decoders.parameters())  # never g_y
    assert x.grad is None  # nor f_x through the translation
    assert nets.model.stages["conv1"][0].weight.grad.abs().max() > 0  # f_y ...
    assert nets.model.stages["logits"][-1].weight.grad.abs().max() > 0  # ... and h


def test_the_critics_losses_train_no_generator_and_the_generator_is_pushed_to_the_real_side():
    nets = _nets(ALL)
    x, c, y = _batch()
    fwd = forward(nets, x, y, ALL)
    losses = critic_terms(nets, fwd, x, y, ALL, 10.0, torch.Generator().manual_seed(0))
    assert set(losses) == {"d_z", "d_x", "d_y"}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in nets.generator_parameters())
    assert all(p.grad is not None for critic in nets.critics() for p in critic.parameters())


# ---- networks -----------------------------------------------------------------------------------

def test_decoders_share_their_first_layers_and_reach_the_image_size():
    dec = Decoders(500, 1, 1, 32, 8, shared=2)  # digits: three transposed convolutions from the 500-d code
    assert len(dec.trunk) == 2 and len(dec.heads["x"]) == 1 and dec.heads["x"] is not dec.heads["y"]
    z = torch.randn(3, 500)
    assert dec(z, "x").shape == dec(z, "y").shape == (3, 1, 32, 32)
    assert dec(z, "x").abs().max() <= 1  # tanh
    maps = Decoders(40, 8, 3, 64, 4, shared=1)  # scenes: a convolution, then three stride-2 transposed ones
    assert maps(torch.randn(2, 40, 8, 16), "y").shape == (2, 3, 64, 128)
    with pytest.raises(ValueError, match="factors of 2"):
        Decoders(40, 6, 3, 64, 4, shared=1)
    with pytest.raises(ValueError, match="share 0 to 2"):
        Decoders(500, 1, 1, 32, 8, shared=3)
    assert ImageCritic(1, 4, 3)(torch.randn(2, 1, 32, 32)).shape == (2, 1, 4, 4)


def test_input_adapter_makes_digits_32x32_grey_and_scales_segmentation_back():
    model = InputAdapter(LeNet(10, 1, 32), size=32, grey=True)
    rgb = torch.rand(2, 3, 28, 28) * 2 - 1
    prepared = model.prepare(rgb)
    assert prepared.shape == (2, 1, 32, 32)
    grey = 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:]
    assert torch.allclose(prepared, nn.functional.interpolate(grey, size=(32, 32), mode="bilinear"), atol=1e-6)
    assert model(rgb).shape == (2, 10) and model.forward_features(rgb, ["fc1"])["fc1"].shape == (2, 500)

    class Seg(nn.Module):  # a stand-in segmenter: logits at its input's size
        task, num_classes, in_channels, encoder_layer, layer_names = "segmentation", 4, 3, "conv", ("conv", "logits")

        def __call__(self, x):
            return torch.zeros(x.shape[0], 4, *x.shape[-2:]) + x.shape[-1]

    seg = InputAdapter.__new__(InputAdapter)
    nn.Module.__init__(seg)
    seg.inner, seg.size, seg.grey, seg.scale, seg.task = Seg(), None, False, 2, "segmentation"
    out = seg(torch.zeros(1, 3, 32, 64))
    assert out.shape == (1, 4, 32, 64) and out.max().item() == 32  # the net saw 16x32, logits are back at 32x64


# ---- params ---------------------------------------------------------------------------------------

def test_params_sets_lambdas_and_their_checks():
    p = I2IParams()
    assert p.weights("z_idy_trc") == {"c": 1.0, "z": 0.05, "tr": 0.0, "id_x": 0.0, "id_y": 0.1, "cyc": 0.0,
                                      "trc": 0.1}
    assert len(p.sets) == 9 and p.sets["all"] == TERMS
    custom = I2IParams(sets={"all": ("c", "z")})  # a set given replaces its default, the others stay
    assert custom.sets["all"] == ("c", "z") and custom.sets["none"] == ("c",)
    with pytest.raises(ValidationError, match="unknown set 'mine'"):
        I2IParams(sets={"mine": ("c",)})
    with pytest.raises(ValidationError, match="nothing trains the classifier"):
        I2IParams(sets={"z": ("z", "tr")})
    with pytest.raises(ValidationError, match="unknown set 'best'"):
        I2IParams(default_sets=("best",))
    with pytest.raises(ValidationError):
        I2IParams(sets={"z": ("c", "q")})  # not a term
    seg = SegI2IParams(lambdas={"c": 1, "z": 0.01, "tr": 0.04, "id_x": 0.2, "id_y": 0.2, "cyc": 0, "trc": 0.1})
    assert seg.weights("all")["cyc"] == 0.0  # 4.3: no cycle loss, so no cycle networks


# ---- a short run ----------------------------------------------------------------------------------

def _digits(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.randint(10, (n,), generator=g))


def test_training_is_seeded_logs_every_active_term_and_changes_only_trainable_nets(tmp_path):
    def run(out: str):
        torch.manual_seed(0)
        model = LeNet(10, 1, 32)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        nets, result = train_i2i(model, InputAdapter(model, size=32, grey=True), _digits(24, 0),
                                 TensorDataset(_digits(24, 1).tensors[0]), SMALL, SMALL.weights("all"),
                                 torch.device("cpu"), 0, tmp_path / out, None, monitor=lambda m: 0.5)
        return nets, result, start

    nets, result, start = run("a.pt")
    assert len(result.history) == 2
    row = result.history[-1]
    for key in ("loss_c", "loss_z", "loss_tr", "loss_id_x", "loss_id_y", "loss_cyc", "loss_trc", "loss_d_z",
                "loss_d_x", "loss_d_y", "w_d_z", "w_d_x", "w_d_y", "target_metric"):
        assert math.isfinite(row[key]), key
    assert any(not torch.equal(start[k], v) for k, v in nets.model.state_dict().items())
    again, result_b, _ = run("b.pt")
    assert all(torch.equal(a, b) for a, b in zip(nets.state_dict().values(), again.state_dict().values()))
    assert [r["loss_c"] for r in result.history] == [r["loss_c"] for r in result_b.history]


@pytest.mark.parametrize("profile", ["tiny", "demo", "full"])
def test_the_embedding_knows_the_reported_sets_without_the_other_methods(raw_params, profile):
    """``reported_sets`` (the embedding stage's, from params and I2IAdapt's rows alone) agrees with the registry's
    rows of every experiment, listed or by default."""
    import copy

    from pipeline_lib.config import parse_params
    from pipeline_lib.methods.i2i_spec import reported_sets, row_name
    from pipeline_lib.registry import Experiment
    raw = copy.deepcopy(raw_params)
    raw["profile"] = profile
    raw["experiments"]["listed"] = {**raw["experiments"]["mnist5k_mnistm"], "methods": ["source_only", "i2i_all"]}
    params = parse_params(raw)
    for name in params.experiments:
        exp = Experiment(params, name)
        assert set(map(row_name, reported_sets(exp))) == {r for r in exp.rows if r.startswith("i2i_")}, name
    assert reported_sets(Experiment(params, "listed")) == ("all",)
