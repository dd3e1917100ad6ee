"""Segmentation backbones: FCN-8s/VGG16 (CyCADA), DRN-C-26 (DRNSeg), ERFNet (GAM). CPU, small inputs."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from pipeline_lib.models.drn import DRN26Seg
from pipeline_lib.models.erfnet import ERFNet, NonBottleneck1d
from pipeline_lib.models.fcn8s import VGG16FCN8s

C = 5
SIZES = [(64, 96), (100, 132)]  # the second is not a multiple of 8 nor 32


def _ceil_to(n: int, multiple: int) -> int:
    return math.ceil(n / multiple) * multiple


# Per model: (tap strides, spatial size of a tap of stride s for an input side n).
FCN_STRIDES = (2, 4, 8, 16, 32, 32, 32)
DRN_STRIDES = (1, 1, 2, 4, 8, 8, 8, 8, 8)
ERF_ENC_STRIDES = (2,) + (4,) * 6 + (8,) * 9
ERF_DEC_STRIDES = (4, 4, 4, 2, 2, 2, 1)
SIDE: dict[str, Callable[[int, int], int]] = {
    "fcn": lambda n, s: _ceil_to(n, 32) // s,
    "drn": lambda n, s: math.ceil(n / s),
    "erfnet": lambda n, s: _ceil_to(n, 8) // s,
    "erfnet_nodec": lambda n, s: _ceil_to(n, 8) // s,
}
STRIDES = {
    "fcn": FCN_STRIDES,
    "drn": DRN_STRIDES,
    "erfnet": ERF_ENC_STRIDES + ERF_DEC_STRIDES,
    "erfnet_nodec": ERF_ENC_STRIDES + (8,),
}
FIRST_CONV = {"fcn": "pool1.0", "drn": "layer0.conv1", "erfnet": "encoder.b01.conv", "erfnet_nodec": "encoder.b01.conv"}


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "fcn": VGG16FCN8s(C),
        "drn": DRN26Seg(C),
        "erfnet": ERFNet(C),
        "erfnet_nodec": ERFNet(C, decoder=False),
    }


def _n_params(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _run_with_taps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[str, torch.Tensor]]]:
    calls: list[tuple[str, torch.Tensor]] = []
    handles = [model.get_submodule(name).register_forward_hook(
        lambda _m, _i, out, name=name: calls.append((name, out))) for name in model.TAPS]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, calls


@pytest.mark.parametrize("name", list(STRIDES))
@pytest.mark.parametrize("size", SIZES)
def test_output_is_full_resolution_logits(models, name, size):
    torch.manual_seed(0)
    model = models[name].eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, C, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(STRIDES))
@pytest.mark.parametrize("size", SIZES)
def test_taps_fire_once_in_order_with_the_documented_strides(models, name, size):
    model = models[name].eval()
    assert model.ENCODER_LAYER in model.TAPS
    with torch.no_grad():
        _, calls = _run_with_taps(model, torch.randn(1, 3, *size))
    assert [n for n, _ in calls] == list(model.TAPS)  # each exactly once, in forward order
    assert all(isinstance(t, torch.Tensor) and t.dim() == 4 for _, t in calls)
    side = SIDE[name]
    got = [tuple(t.shape[-2:]) for _, t in calls]
    assert got == [(side(size[0], s), side(size[1], s)) for s in STRIDES[name]]


def test_tap_lists():
    assert VGG16FCN8s.TAPS == ("pool1", "pool2", "pool3", "pool4", "pool5", "fc6", "fc7")
    assert VGG16FCN8s.ENCODER_LAYER == "fc7"
    assert DRN26Seg.TAPS == tuple(f"layer{i}" for i in range(9)) and DRN26Seg.ENCODER_LAYER == "layer8"
    no_dec = ERFNet(3, decoder=False)
    assert len(no_dec.TAPS) == 17  # GAM: layers i/17 of ERFNet without decoder
    assert no_dec.TAPS[-1] == "encoder.output_conv" and no_dec.TAPS[15] == no_dec.ENCODER_LAYER == "encoder.b16"
    with_dec = ERFNet(3)
    assert with_dec.TAPS[:16] == no_dec.TAPS[:16] and len(with_dec.TAPS) == 16 + 7
    assert with_dec.ENCODER_LAYER == "encoder.b16"
    with pytest.raises(AttributeError):
        with_dec.get_submodule("encoder.output_conv")  # the decoder replaces the encoder's classifier


@pytest.mark.parametrize("name", list(STRIDES))
def test_gradients_reach_the_first_layer_and_every_trainable_parameter(models, name):
    torch.manual_seed(0)
    model = models[name].train()
    model.zero_grad(set_to_none=True)
    out = model(torch.randn(1, 3, 40, 56))
    F.cross_entropy(out, torch.randint(0, C, (1, 40, 56))).backward()
    first = model.get_submodule(FIRST_CONV[name]).weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []
    model.zero_grad(set_to_none=True)


# ---- FCN-8s ---------------------------------------------------------------------------------------------


def test_fcn_bilinear_upsamplers(models):
    model = models["fcn"]
    for up, f in ((model.upscore2, 2), (model.upscore_pool4, 2), (model.upscore8, 8)):
        assert not up.weight.requires_grad  # fixed, as in the FCN reference (lr_mult=0) and CyCADA
        out = up(torch.full((1, C, 5, 6), 3.0))
        assert out.shape == (1, C, 5 * f, 6 * f)
        torch.testing.assert_close(out[:, :, f:-f, f:-f], torch.full_like(out[:, :, f:-f, f:-f], 3.0))
        x = torch.randn(1, C, 5, 6)  # per-class bilinear upsampling, half-pixel aligned like F.interpolate
        ref = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)
        torch.testing.assert_close(up(x)[:, :, f:-f, f:-f], ref[:, :, f:-f, f:-f])


def test_fcn_skip_scorers_start_at_zero(models):
    model = models["fcn"]
    for scorer in (model.score_pool4, model.score_pool3):
        assert scorer.weight.abs().sum() == 0 and scorer.bias.abs().sum() == 0
    assert model.fc6[0].kernel_size == (7, 7) and model.fc6[0].padding == (3, 3)
    assert isinstance(model.fc6[2], nn.Dropout2d) and isinstance(model.fc7[2], nn.Dropout2d)
    assert [type(b[-1]) for b in (model.pool1, model.pool2, model.pool3, model.pool4,
                                  model.pool5)] == [nn.MaxPool2d] * 5
    assert [sum(isinstance(m, nn.Conv2d) for m in b) for b in (model.pool1, model.pool2, model.pool3, model.pool4,
                                                               model.pool5)] == [2, 2, 3, 3, 3]


def test_fcn_parameter_count_is_vgg16_without_its_last_classifier(models):
    model = models["fcn"]
    vgg16_total, vgg16_fc8 = 138_357_544, 4096 * 1000 + 1000  # torchvision's VGG16 has 138.36M parameters
    body = sum(_n_params(model.get_submodule(n)) for n in VGG16FCN8s.TAPS)
    assert body == vgg16_total - vgg16_fc8
    heads = (4096 + 1) * C + (512 + 1) * C + (256 + 1) * C + C * C * (4 * 4 + 4 * 4 + 16 * 16)
    assert _n_params(model) == body + heads  # about 134.3M + heads
    assert 134.2e6 < _n_params(model) < 134.6e6


def test_fcn_loads_reshaped_vgg16_weights_offline(models):
    model = models["fcn"]
    torch.manual_seed(1)
    vgg = torchvision.models.vgg16(weights=None).state_dict()
    model.load_vgg16_state_dict(vgg)
    torch.testing.assert_close(model.pool1[0].weight, vgg["features.0.weight"])
    torch.testing.assert_close(model.pool3[0].weight, vgg["features.10.weight"])
    torch.testing.assert_close(model.pool5[4].bias, vgg["features.28.bias"])
    torch.testing.assert_close(model.fc6[0].weight, vgg["classifier.0.weight"].view(4096, 512, 7, 7))
    torch.testing.assert_close(model.fc7[0].weight.flatten(1), vgg["classifier.3.weight"])
    torch.testing.assert_close(model.fc7[0].bias, vgg["classifier.3.bias"])


# ---- DRN-C-26 -------------------------------------------------------------------------------------------


def test_drn_output_stride_is_8(models):
    model = models["drn"].eval()
    with torch.no_grad():
        _, calls = _run_with_taps(model, torch.randn(1, 3, 64, 96))
    layer8 = dict(calls)["layer8"]
    assert layer8.shape == (1, 512, 64 // 8, 96 // 8)
    assert not model.up.weight.requires_grad and model.up.stride == (8, 8)


def test_drn_c_26_structure(models):
    model = models["drn"]
    blocks = {f"layer{i}": len(model.get_submodule(f"layer{i}")) for i in range(1, 9)}
    assert blocks == {"layer1": 1, "layer2": 1, "layer3": 2, "layer4": 2, "layer5": 2, "layer6": 2, "layer7": 1,
                      "layer8": 1}
    dilations = {f"layer{i}": [(b.conv1.dilation[0], b.conv2.dilation[0]) for b in model.get_submodule(f"layer{i}")]
                 for i in range(1, 9)}
    assert dilations["layer5"] == [(2, 2), (2, 2)] and dilations["layer6"] == [(4, 4), (4, 4)]
    assert dilations["layer7"] == [(2, 2)] and dilations["layer8"] == [(1, 1)]
    residual = [b.residual for i in range(1, 9) for b in model.get_submodule(f"layer{i}")]
    assert residual == [True] * 10 + [False, False]  # degridding layers 7, 8 have no skip connection (arch C)
    assert model.layer0.conv1.kernel_size == (7, 7) and model.layer0.conv1.stride == (1, 1)


def test_drn_parameter_count_matches_the_paper(models):
    base = sum(_n_params(models["drn"].get_submodule(n)) for n in DRN26Seg.TAPS)
    assert 21.0e6 < base + 512 * 1000 + 1000 < 21.2e6  # DRN-C-26: 21.1M with its ImageNet fc


def test_drn_loads_reference_state_dicts_offline(models):
    model = models["drn"]
    torch.manual_seed(2)
    donor = DRN26Seg(C)
    ref = {"module." + DRN26Seg.reference_key(k): v.clone() for k, v in donor.state_dict().items()
           if k.startswith("layer") and not k.endswith("num_batches_tracked")}
    for key in ("conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                "layer5.0.downsample.1.running_mean", "layer8.0.conv2.weight"):
        assert "module." + key in ref  # parameter names of fyu/drn's drn_c_26
    for key in ("layer1.0.downsample.0.weight", "layer7.0.downsample.0.weight", "layer0.conv1.weight"):
        assert "module." + key not in ref
    ref["module.fc.weight"], ref["module.fc.bias"] = torch.zeros(1000, 512, 1, 1), torch.zeros(1000)
    model.load_imagenet_state_dict(ref)
    torch.testing.assert_close(model.layer0.conv1.weight, donor.layer0.conv1.weight)
    torch.testing.assert_close(model.layer6[1].bn2.running_var, donor.layer6[1].bn2.running_var)
    with pytest.raises(KeyError, match="does not fit"):
        model.load_imagenet_state_dict({k: v for k, v in ref.items() if "layer3" not in k})


# ---- ERFNet ---------------------------------------------------------------------------------------------


def test_erfnet_encoder_structure():
    model = ERFNet(C, decoder=False)
    blocks = [model.get_submodule(n) for n in model.TAPS[:16]]
    kinds = [type(b).__name__ for b in blocks]
    assert kinds == ["DownsamplerBlock"] * 2 + ["NonBottleneck1d"] * 5 + ["DownsamplerBlock"] + ["NonBottleneck1d"] * 8
    nb = [b for b in blocks if isinstance(b, NonBottleneck1d)]
    assert [b.conv3x1_2.dilation[0] for b in nb] == [1] * 5 + [2, 4, 8, 16] * 2
    assert [b.dropout.p for b in nb] == [0.03] * 5 + [0.3] * 8


def test_erfnet_without_decoder_upsamples_layer_17_bilinearly(models):
    model = models["erfnet_nodec"].eval()
    with torch.no_grad():
        out, calls = _run_with_taps(model, torch.randn(1, 3, 64, 96))
    low = dict(calls)["encoder.output_conv"]
    torch.testing.assert_close(out, F.interpolate(low, size=(64, 96), mode="bilinear", align_corners=False))


def test_erfnet_parameter_count(models):
    full = _n_params(models["erfnet"])
    assert 2.0e6 < full < 2.1e6  # ERFNet: about 2.06M
    encoder = sum(_n_params(models["erfnet"].get_submodule(n)) for n in models["erfnet"].TAPS[:16])
    assert _n_params(models["erfnet_nodec"]) == encoder + 128 * C + C
