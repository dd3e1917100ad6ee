"""GAM (Huang et al. 2018): Gaussian activation matching and adversarial activation matching."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib.methods.gam_params import MatchActivationsParams
from pipeline_lib.losses import weight_drift
from pipeline_lib.methods.gam import _active_layers, activation_stats, gaussian_match, match_activations
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.models.segmenters import lraspp_mobilenet_v3

CPU = torch.device("cpu")
CFG = MatchActivationsParams(lr=1e-3, batch_size=16, epochs=2, steps_per_epoch=3, disc_hidden=32,
                             layer_weights=(0.1, 1.0))


def _digits(n=64, shift=0.0, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset((torch.rand(n, 1, 28, 28, generator=g) * 2 - 1) * scale + shift)


def test_gaussian_matching_gives_target_the_source_statistics_layer_by_layer():
    torch.manual_seed(0)
    model = LeNet().eval()
    source, target = _digits(seed=0), _digits(shift=0.4, scale=0.5, seed=1)
    layers = ["conv1", "conv2", "fc1", "logits"]
    matched, log = gaussian_match(model, source, target, layers, CPU, batch_size=32)
    assert [r["layer"] for r in log] == layers and all(r["folded"] for r in log)  # LeNet: folded into weights
    assert not matched.matchers  # nothing explicit left
    src = activation_stats(model, source, layers, CPU, 32)
    tgt = activation_stats(matched, target, layers, CPU, 32)
    for name in layers:
        torch.testing.assert_close(tgt[name][0], src[name][0], atol=1e-4, rtol=1e-3)
        torch.testing.assert_close(tgt[name][1], src[name][1], atol=1e-4, rtol=1e-3)
    before = activation_stats(model, target, ["fc1"], CPU, 32)["fc1"][0]
    assert (before - src["fc1"][0]).abs().max() > 1e-2  # there was a shift to remove


def test_gaussian_matching_on_the_same_data_leaves_the_function_unchanged():
    torch.manual_seed(0)
    model = LeNet().eval()
    data = _digits(seed=3)
    matched, _ = gaussian_match(model, data, data, ["conv1", "fc1", "logits"], CPU, batch_size=64)
    x = data.tensors[0][:8]
    torch.testing.assert_close(matched(x), model(x), atol=1e-4, rtol=1e-4)


def test_layers_that_end_in_a_nonlinearity_keep_an_explicit_affine_that_survives_a_checkpoint():
    torch.manual_seed(0)
    model = lraspp_mobilenet_v3(5).eval()
    g = torch.Generator().manual_seed(0)
    source = TensorDataset(torch.rand(4, 3, 32, 48, generator=g) * 2 - 1)
    target = TensorDataset(torch.rand(4, 3, 32, 48, generator=g) * 0.5)
    layers = ["block03", "block16"]
    matched, log = gaussian_match(model, source, target, layers, CPU, batch_size=2)
    assert not any(r["folded"] for r in log) and set(matched.matched_layers()) == set(layers)
    src = activation_stats(model, source, layers, CPU, 2)
    tgt = activation_stats(matched, target, layers, CPU, 2)
    for name in layers:
        torch.testing.assert_close(tgt[name][0], src[name][0], atol=1e-3, rtol=1e-3)
    rebuilt = lraspp_mobilenet_v3(5).eval()
    rebuilt.add_matchers(matched.matched_layers())
    rebuilt.load_state_dict(matched.state_dict())
    x = source.tensors[0][:2]
    torch.testing.assert_close(rebuilt(x), matched(x))


def test_folding_equals_an_explicit_affine():
    torch.manual_seed(0)
    folded, explicit = LeNet().eval(), LeNet().eval()
    explicit.load_state_dict(folded.state_dict())
    scale, shift = torch.rand(20) + 0.5, torch.randn(20)
    assert folded.match_layer("conv1", scale, shift)
    explicit.add_matchers({"conv1": 20})
    with torch.no_grad():
        explicit.matchers["conv1"].scale.copy_(scale)
        explicit.matchers["conv1"].shift.copy_(shift)
    x = _digits(n=4).tensors[0]
    torch.testing.assert_close(folded(x), explicit(x), atol=1e-5, rtol=1e-5)


def test_weight_regulariser_is_zero_at_start_and_grows_and_holds_weights_back(tmp_path):
    torch.manual_seed(0)
    model = LeNet().eval()
    source, target = _digits(seed=0), _digits(shift=0.5, seed=1)
    runs = {}
    for reg in (0.0, 100.0):
        cfg = CFG.model_copy(update={"weight_reg": reg})
        adapted, result = match_activations(model, model, source, target, cfg, ["fc1", "logits"], CPU, 0,
                                            tmp_path / f"m{reg}.pt", None)
        runs[reg] = (adapted, result)
    drift = [row["drift"] for row in runs[0.0][1].history]
    assert 0 < drift[0] < drift[-1]  # unregularised, theta_t keeps moving away from theta_s
    moved = {reg: sum((a - b).pow(2).sum().item() for a, b in zip(run[0].parameters(), model.parameters()))
             for reg, run in runs.items()}
    assert moved[100.0] < moved[0.0]  # the regulariser keeps theta_t closer to theta_s
    for p in model.parameters():
        assert not p.requires_grad  # the source model stays frozen
    reference = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert weight_drift(copy.deepcopy(model), reference).item() == 0.0  # zero at initialisation


def test_gan_losses_are_switched_on_one_layer_at_a_time_deepest_first():
    cfg = CFG.model_copy(update={"progressive": True, "progressive_steps": 10, "disc_pretrain_steps": 5})
    assert _active_layers(["fc1", "logits"], 0, cfg) == ["logits"]
    assert _active_layers(["fc1", "logits"], 14, cfg) == ["logits"]
    assert _active_layers(["fc1", "logits"], 15, cfg) == ["logits", "fc1"]
    assert _active_layers(["fc1", "logits"], 0, CFG) == ["fc1", "logits"]


def test_discriminators_are_pretrained_before_the_target_net_moves(tmp_path):
    torch.manual_seed(0)
    model = LeNet().eval()
    cfg = CFG.model_copy(update={"disc_pretrain_steps": 3})  # epoch 1 (3 steps): discriminators only
    adapted, result = match_activations(model, model, _digits(), _digits(shift=0.5, seed=1), cfg, ["fc1", "logits"],
                                        CPU, 0, tmp_path / "m.pt", None)
    first, second = result.history
    assert first["loss_d"] > 0 and first["loss_gan"] == 0 and first["drift"] == 0
    assert second["loss_gan"] > 0 and second["drift"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(adapted.parameters(), model.parameters()))


def test_pretraining_as_long_as_the_run_is_an_error_not_a_silent_no_op(tmp_path):
    from pipeline_lib.errors import PipelineError
    cfg = CFG.model_copy(update={"disc_pretrain_steps": 6})  # 2 epochs of 3 steps
    with pytest.raises(PipelineError, match=r"disc_pretrain_steps \(6\) is not below the run's 6 steps"):
        match_activations(LeNet(), LeNet(), _digits(), _digits(seed=1), cfg, ["fc1", "logits"], CPU, 0,
                          tmp_path / "m.pt", None)
    assert not (tmp_path / "m.pt").exists()


def test_steps_per_epoch_is_a_fixed_count_that_cycles_a_small_source(tmp_path):
    class Counted(TensorDataset):
        reads = 0

        def __getitem__(self, index):
            Counted.reads += 1
            return super().__getitem__(index)

    source = Counted(*_digits(n=32).tensors)  # 2 batches of 16 per pass; 10 steps asked
    cfg = CFG.model_copy(update={"epochs": 1, "steps_per_epoch": 10, "disc_pretrain_steps": 1})
    match_activations(LeNet(), LeNet(), source, _digits(n=32, seed=1), cfg, ["fc1", "logits"], CPU, 0,
                      tmp_path / "m.pt", None)
    assert Counted.reads >= 10 * 16  # cycled: five passes, not cut at one


@pytest.mark.parametrize("bad", [["fc9"]])
def test_unknown_layers_name_the_params_key(bad):
    from pipeline_lib.errors import PipelineError
    from pipeline_lib.training import check_layers
    with pytest.raises(PipelineError, match="gam.layers.lenet: 'fc9' is not a layer"):
        check_layers(LeNet(), tuple(bad), "gam.layers.lenet")


def test_source_or_not_picks_spatial_layers_and_handles_frames_of_other_sizes():
    from pipeline_lib.methods.gam import source_or_not
    torch.manual_seed(0)
    model = lraspp_mobilenet_v3(5).eval()
    g = torch.Generator().manual_seed(0)
    source = TensorDataset(torch.rand(3, 3, 40, 72, generator=g) * 2 - 1)
    target = TensorDataset(torch.rand(3, 3, 32, 64, generator=g) * 2 - 1)
    panels = source_or_not(model, source, target, CPU, seed=0)
    assert 1 <= len(panels) <= 3 and panels[0]["layer"] == "block00"
    for p in panels:
        assert p["source_a"].size == p["source_b"].size > 1 and p["target"].size > 1
