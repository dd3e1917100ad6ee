"""The light-weight calibrator (Ye et al., CVPR 2020): bound, frozen model, 4-group losses, export."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from pipeline_lib.methods.calibrator_params import CalibratorParams, settings
from pipeline_lib.losses import group_accuracy, group_loss
from pipeline_lib.methods.calibrator import (GROUPS, amplitude_spectra, calibrator_loss, grid_patch, shuffled_patches,
                                             train_calibrator)
from pipeline_lib.models.calibrator import CalibratedModel, Calibrator, parameter_count, trace_deployed
from pipeline_lib.models.lenet import LeNet

TINY = CalibratorParams(ngf=4, n_blocks=1, linf=0.05, patch=8, disc_hidden=16, batch_size=8, epochs=2,
                        steps_per_epoch=3)


def _digits(n: int, shift: float, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 28, 28, generator=g) * 2 - 1 + shift).clamp(-1, 1)
    return TensorDataset(x, torch.randint(10, (n,), generator=g))


def test_perturbation_obeys_the_linf_bound_for_any_input_and_any_weights():
    torch.manual_seed(0)
    for linf, shape in ((0.01, (3, 3, 17, 33)), (0.3, (2, 1, 28, 28)), (1.0, (1, 3, 64, 40))):
        cal = Calibrator(shape[1], ngf=4, n_blocks=1, linf=linf)
        with torch.no_grad():
            for p in cal.parameters():
                p.normal_(0, 50)  # saturate the tanh head
        x = torch.randn(shape) * 100
        delta = cal.perturbation(x)
        assert delta.shape == x.shape  # sizes that are not multiples of 4 come back unpadded
        assert delta.abs().max() <= 2 * linf  # [0, 1] units -> [-1, 1] images
        assert delta.abs().max() > 1.5 * linf  # and the bound is actually reached when saturated
        assert torch.equal(cal(x), (x + delta).clamp(-1, 1))  # G_c = I + G'_c, kept in the image range


def test_a_fresh_calibrator_is_the_identity_and_its_output_stays_an_image():
    torch.manual_seed(0)
    cal = Calibrator(1, ngf=4, n_blocks=1, linf=0.3)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.equal(cal(x), x)  # training starts at the source model's own accuracy
    with torch.no_grad():
        cal.head.bias.fill_(5.0)  # push every pixel up by the bound
    out = cal(x)
    assert out.max() <= 1.0 and torch.equal(out, (x + 0.6 * torch.tanh(torch.tensor(5.0))).clamp(-1, 1))


def test_calibrator_is_small_next_to_the_models_it_serves():
    assert abs(parameter_count(Calibrator(1, ngf=16, n_blocks=2)) - 180_000) < 20_000  # the paper's 0.18M
    assert parameter_count(Calibrator(3, ngf=8, n_blocks=2)) < 60_000  # the paper's 0.05M on DRN-26


def test_group_loss_and_accuracy_on_hand_made_logits():
    logits = torch.tensor([[9.0, 0.0, 0.0, 0.0], [0.0, 0.0, 9.0, 0.0]])
    assert group_loss(logits, 0).item() == F.cross_entropy(logits, torch.tensor([0, 0])).item()
    assert group_accuracy(logits, 0) == 0.5 and group_accuracy(logits, 2) == 0.5 and group_accuracy(logits, 3) == 0.0
    assert group_loss(logits[:1], 0).item() < 1e-3 < group_loss(logits[:1], 1).item()
    maps = torch.zeros(2, len(GROUPS), 3, 5)
    maps[:, 3] = 5.0  # every location says G4
    assert group_accuracy(maps, 3) == 1.0 and group_loss(maps, 3).item() < group_loss(maps, 0).item()
    assert GROUPS[0].startswith("G1 source") and GROUPS[3].startswith("G4 calibrated target")


def test_calibrator_loss_scores_g3_and_g4_as_source_with_the_release_weight_on_g3():
    as_g1, as_g2 = torch.tensor([[9.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.0, 9.0, 0.0, 0.0]])
    paper, release = CalibratorParams(), CalibratorParams(source_weight=0.1, lambda_pixel=0.5)
    fooled, caught = group_loss(as_g1, 0), group_loss(as_g2, 0)
    assert torch.isclose(calibrator_loss([as_g2, as_g1], [as_g2, as_g1], paper), 2 * caught + 2 * fooled)
    # G3 (calibrated source) caught, G4 (calibrated target) fooled: the release weighs the G3 terms 0.1
    assert torch.isclose(calibrator_loss([as_g2, as_g1], [as_g2, as_g1], release), 0.1 * 1.5 * caught + 1.5 * fooled)
    assert torch.isclose(calibrator_loss([as_g1, as_g2], [as_g1, as_g2], release), 0.1 * 1.5 * fooled + 1.5 * caught)


def test_shuffled_patches_keep_a_crops_pixels_in_another_order_and_pass_gradients():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6).requires_grad_(True)
    patches = shuffled_patches(x, 3, torch.Generator().manual_seed(0))
    assert patches.shape == (2, 9)
    for img, patch in zip(x.detach(), patches.detach()):
        found = [img[0, i:i + 3, j:j + 3].flatten().sort().values for i in range(4) for j in range(4)]
        assert any(torch.equal(patch.sort().values, f) for f in found)
    assert not torch.equal(patches.detach(), patches.detach().sort(dim=1).values)  # shuffled, not raster order
    patches.sum().backward()
    assert x.grad.sum().item() == 18


def test_training_leaves_the_frozen_model_bit_identical_and_moves_the_calibrator(tmp_path):
    torch.manual_seed(0)
    model = LeNet(num_classes=10, in_channels=1, image_size=28)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    cal, result = train_calibrator(model, _digits(24, 0.0, 1), _digits(24, 0.5, 2), TINY, torch.device("cpu"), 0,
                                   tmp_path / "cal.pt", None, monitor=lambda m: seen.append(m.training) or 0.5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad for p in model.parameters()) and not model.training
    assert seen == [False, False]  # the monitor sees the deployed pipeline in eval mode, once per epoch
    assert (len(result.history) == 2
            and {"acc_d_feat", "acc_d_pixel", "fooled", "target_metric"} <= set(result.history[0]))
    assert max(row["perturbation"] for row in result.history) <= TINY.linf + 1e-6
    fresh = Calibrator(1, TINY.ngf, TINY.n_down, TINY.n_blocks, TINY.linf)
    x = _digits(4, 0.5, 3).tensors[0]
    assert not torch.allclose(cal(x), fresh(x))


def test_export_round_trip_equals_calibrator_then_model(tmp_path):
    torch.manual_seed(0)
    model = CalibratedModel(Calibrator(1, ngf=4, n_blocks=1, linf=0.2), LeNet(num_classes=10, in_channels=1,
                                                                             image_size=28)).eval()
    with torch.no_grad():
        model.calibrator.head.weight.normal_(0, 0.5)  # a trained calibrator (a fresh one is the identity)
    example = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.jit.save(trace_deployed(model, example), str(tmp_path / "deployed.pt"))
    loaded = torch.jit.load(str(tmp_path / "deployed.pt"))
    other = torch.rand(4, 1, 28, 28) * 2 - 1  # new images of the traced size
    with torch.no_grad():
        for x in (example, other):
            assert torch.allclose(loaded(x), model.model(model.calibrator(x)), atol=1e-5)
        assert not torch.allclose(loaded(other), model.model(other), atol=1e-3)  # the calibrator is inside


def test_amplitude_spectra_of_the_identity_calibrator_are_unchanged():
    cal = Calibrator(1, ngf=4, n_blocks=1, linf=0.1)
    with torch.no_grad():
        cal.head.weight.zero_(), cal.head.bias.zero_()  # G'_c = 0
    images = torch.rand(6, 1, 16, 16)  # a positive mean: the DC term dominates
    spectra = amplitude_spectra(cal, images, torch.device("cpu"), batch_size=4)
    assert torch.allclose(torch.from_numpy(spectra["before"]), torch.from_numpy(spectra["after"]))
    assert spectra["perturbation"].max() == 0.0 and spectra["before"].shape == (16, 16)
    assert spectra["before"][8, 8] == spectra["before"].max()  # the mean (DC) sits at the centre


def test_batch_norm_statistics_of_a_frozen_segmenter_stay_bit_identical(tmp_path):
    from pipeline_lib.models.segmenters import SEGMENTERS
    torch.manual_seed(0)
    model = SEGMENTERS["lraspp_mobilenet_v3"](19, pretrained=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert any("running_mean" in k for k in before)
    frames = TensorDataset(torch.rand(4, 3, 64, 64) * 2 - 1, torch.zeros(4, 64, 64, dtype=torch.long))
    params = TINY.model_copy(update={"batch_size": 2, "epochs": 1, "steps_per_epoch": 2, "disc_hidden": 8})
    train_calibrator(model, frames, frames, params, torch.device("cpu"), 0, tmp_path / "c.pt", None,
                     monitor=lambda m: 0.0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_release_variant_trains_on_softmax_scores(tmp_path, monkeypatch):
    import pipeline_lib.methods.calibrator as calib
    torch.manual_seed(0)
    model = LeNet(num_classes=10, in_channels=1, image_size=28)
    seen, original = [], calib.GroupDiscriminators.__init__

    def spy(self, feat_channels, image_channels, params):
        seen.append((feat_channels, image_channels * params.patch ** 2))
        original(self, feat_channels, image_channels, params)

    monkeypatch.setattr(calib.GroupDiscriminators, "__init__", spy)
    release = TINY.model_copy(update={"layer": "logits", "softmax": True, "source_weight": 0.1, "patch": 4,
                                      "epochs": 1})
    _, result = train_calibrator(model, _digits(16, 0.0, 1), _digits(16, 0.5, 2), release, torch.device("cpu"), 0,
                                 tmp_path / "cal.pt", None)
    assert seen == [(10, 16)]  # the feature discriminator sees the 10 class scores, the pixel one a 4x4 patch
    assert len(result.history) == 1 and result.history[0]["loss_c"] > 0


def test_the_release_output_is_one_sided_and_starts_near_its_bound():
    torch.manual_seed(0)
    cal = Calibrator(1, ngf=4, n_blocks=1, linf=0.2, output="one_sided")
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    delta = cal.perturbation(x)
    assert delta.min() >= 0 and delta.max() <= 0.4  # [0, 2 * linf] on [-1, 1] images: it only brightens
    assert (delta == 0.4).float().mean() > 0.5  # tanh ~ 0 -> 0.5, clipped at the bound: most pixels start there
    assert torch.equal(cal(x), (x + delta).clamp(-1, 1))
    with torch.no_grad():
        cal.head.bias.fill_(-50.0)  # tanh -> -1: no perturbation at all
    assert torch.equal(cal(x), x)
    symmetric = Calibrator(1, ngf=4, n_blocks=1, linf=0.2)
    assert torch.equal(symmetric(x), x)  # the paper's default still starts at the identity


def test_grid_patch_shares_one_place_and_one_order_across_the_batch():
    base = torch.arange(100, dtype=torch.float).reshape(1, 10, 10)
    x = torch.stack([base, base + 1000])  # the second image: the same pixels shifted by 1000
    places = set()
    for seed in range(40):
        out = grid_patch(x, 4, torch.Generator().manual_seed(seed))
        assert out.shape == (2, 16) and torch.equal(out[1] - out[0], torch.full((16,), 1000.0))
        top, left = int(out[0].min()) // 10, int(out[0].min()) % 10
        assert top in (0, 4, 6) and left in (0, 4, 6)  # the grid of 4x4 patches, the last aligned to the edge
        places.add((top, left))
    assert len(places) == 9
    y = x.clone().requires_grad_(True)
    grid_patch(y, 4, torch.Generator().manual_seed(0)).sum().backward()
    assert y.grad.sum().item() == 32


def test_release_switches_train_with_frozen_dropout_and_weight_decay(tmp_path, monkeypatch):
    import pipeline_lib.methods.calibrator as calib
    torch.manual_seed(0)
    model = LeNet(num_classes=10, in_channels=1, image_size=28)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes, decays, original = [], [], calib.build_optimizer
    monkeypatch.setattr(calib, "build_optimizer", lambda *a, **k: decays.append(k["weight_decay"]) or original(*a, **k))
    release = TINY.model_copy(update={"layer": "logits", "softmax": True, "source_weight": 0.1, "patch": 4,
                                      "discriminators": "release", "output": "one_sided", "weight_decay": 5e-4,
                                      "frozen_dropout": True, "epochs": 1})
    spy = model.stages.logits[1].forward
    monkeypatch.setattr(model.stages.logits[1], "forward", lambda h: modes.append(model.stages.logits[1].training)
                        or spy(h))
    seen = []
    cal, result = train_calibrator(model, _digits(16, 0.0, 1), _digits(16, 0.5, 2), release, torch.device("cpu"), 0,
                                   tmp_path / "cal.pt", None, monitor=lambda m: seen.append(m.training) or 0.5)
    assert decays == [5e-4, 5e-4] and cal.output == "one_sided"
    assert modes[0] is False and all(modes[1:]) and seen == [False]  # dropout on while training, not for the monitor
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)
    assert result.history[0]["perturbation"] <= 0.2 + 1e-6


def test_settings_names_each_departure_from_the_paper():
    assert settings(CalibratorParams()).startswith("the paper's formulation")
    release = settings(CalibratorParams(layer="logits", softmax=True))
    assert release == "feature discriminator on softmax of logits (the authors' release; the paper: M_s features)"
    several = settings(CalibratorParams(layer="conv2", source_weight=0.1, output="one_sided", weight_decay=5e-4))
    assert several.split("; ") == ["feature discriminator on conv2 (the paper: M_s features)",
                                   "calibrated-source terms weighted 0.1", "the release's one-sided output",
                                   "weight decay 0.0005"]
