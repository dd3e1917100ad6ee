"""Segmentation task models behind the TaskModel interface (named layers via hooks)."""

from __future__ import annotations

import pytest
import torch

from pipeline_lib.config import BackboneParams
from pipeline_lib.methods.adda import encoder_parameter_names, resolve_layer
from pipeline_lib.models import build_backbone
from pipeline_lib.models.segmenters import SEGMENTERS, lraspp_mobilenet_v3
from pipeline_lib.errors import PipelineError


@pytest.fixture(scope="module")
def lraspp():
    torch.manual_seed(0)
    return lraspp_mobilenet_v3(19).eval()


def test_named_layers_in_forward_order_and_logits_at_input_size(lraspp):
    assert lraspp.layer_names[0] == "block00" and lraspp.layer_names[-1] == "logits"
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    feats = lraspp.forward_features(x, ["logits", "block16", "block02"])
    assert list(feats) == ["block02", "block16", "logits"]  # forward order, whatever the request order
    assert feats["logits"].shape == (2, 19, 64, 96)
    assert feats["block16"].shape[-2:] == (4, 6)  # output stride 16
    torch.testing.assert_close(feats["logits"], lraspp(x))
    torch.testing.assert_close(lraspp.encode(x), feats["block16"])
    with pytest.raises(KeyError, match="unknown layer"):
        lraspp.forward_features(x, ["fc7"])


def test_hooks_do_not_leak_between_calls(lraspp):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    before = sum(len(m._forward_hooks) for m in lraspp.modules())
    lraspp.forward_features(x, ["block05"])
    assert sum(len(m._forward_hooks) for m in lraspp.modules()) == before


def test_input_range_is_mapped_to_imagenet_statistics(lraspp):
    grey = torch.zeros(1, 3, 8, 8)  # mid grey in [-1, 1]
    net_in = {}
    handle = lraspp.net.register_forward_pre_hook(lambda m, args: net_in.setdefault("x", args[0]))
    lraspp(grey)
    handle.remove()
    expected = (0.5 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(net_in["x"][0, :, 0, 0], expected)


def test_encoder_parameters_are_traced_through_skip_connections(lraspp):
    sample = torch.rand(1, 3, 32, 32) * 2 - 1
    enc = encoder_parameter_names(lraspp, "block16", sample)
    assert enc and all(n.startswith("net.model.backbone.") for n in enc)
    assert not any("classifier" in n for n in enc)  # the LR-ASPP head does not produce block16
    assert len(encoder_parameter_names(lraspp, "logits")) == len(list(lraspp.parameters()))
    assert all(p.requires_grad for p in lraspp.parameters())  # tracing restored the flags
    assert resolve_layer(lraspp, "encoder") == "block16"
    with pytest.raises(PipelineError, match="not a layer"):
        resolve_layer(lraspp, "pool5")


@pytest.mark.parametrize("arch", ["lraspp_mobilenet_v3", "drn26", "erfnet", "erfnet_encoder"])
def test_every_segmentation_arch_builds_from_params(arch):
    torch.manual_seed(0)
    model = build_backbone(BackboneParams(arch=arch), num_classes=5).eval()
    assert model.task == "segmentation" and model.encoder_layer in model.layer_names
    with torch.no_grad():
        out = model.forward_features(torch.zeros(1, 3, 40, 56), [model.encoder_layer, "logits"])
    assert out["logits"].shape == (1, 5, 40, 56) and out[model.encoder_layer].dim() == 4


def test_erfnet_encoder_has_gams_17_layers():
    model = SEGMENTERS["erfnet_encoder"](19)
    assert len(model.layer_names) == 18  # 16 blocks + output conv + logits (the upsampled output)
