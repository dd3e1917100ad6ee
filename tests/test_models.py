import pytest
import torch

from pipeline_lib.config import BackboneParams
from pipeline_lib.models import build_backbone
from pipeline_lib.models.lenet import LeNet


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_lenet_shapes_and_named_layers(channels, size):
    model = build_backbone(BackboneParams(arch="lenet", channels=channels, size=size), num_classes=10).eval()
    x = torch.randn(4, channels, size, size)
    assert model(x).shape == (4, 10)
    assert model.layer_names == ("conv1", "conv2", "fc1", "logits")
    feats = model.forward_features(x, ["conv1", "fc1", "logits"])
    assert list(feats) == ["conv1", "fc1", "logits"]
    assert feats["conv1"].shape[:2] == (4, 20)
    assert feats["fc1"].shape == (4, LeNet.FEATURE_DIM)
    torch.testing.assert_close(feats["logits"], model(x))


def test_encoder_split_reproduces_the_forward_pass():
    model = LeNet(in_channels=1, image_size=28).eval()
    x = torch.randn(3, 1, 28, 28)
    h = model.encode(x)
    assert model.encoder_layer == "fc1" and h.shape == (3, 500)
    torch.testing.assert_close(model.forward_from(h, model.encoder_layer), model(x))


def test_parameter_count_matches_the_cycada_lenet():
    # conv 1->20 5x5, conv 20->50 5x5, fc 800->500, fc 500->10
    expected = (20 * 25 + 20) + (50 * 20 * 25 + 50) + (800 * 500 + 500) + (500 * 10 + 10)
    assert sum(p.numel() for p in LeNet().parameters()) == expected


def test_unknown_layers_are_rejected():
    model = LeNet()
    with pytest.raises(KeyError, match="unknown layer"):
        model.forward_features(torch.zeros(1, 1, 28, 28), ["pool5"])
    with pytest.raises(KeyError, match="unknown layer"):
        model.forward_from(torch.zeros(1, 500), "fc7")
    with pytest.raises(ValueError, match="at least 16x16"):
        LeNet(image_size=12)
