"""ResNet-18/50 task models: the chain of named layers, and ImageNet weights from a local file or the hub cache only."""

from __future__ import annotations

import pytest
import torch
import torchvision

from pipeline_lib.config import BackboneParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.models import build_backbone
from pipeline_lib.models.resnet import hub_cache_files


def _imagenet_file(path):
    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), path)
    return net


def test_resnet_is_a_chain_with_the_pooled_feature_as_encoder():
    model = build_backbone(BackboneParams(arch="resnet18", size=32, channels=1), num_classes=7)
    x = torch.rand(2, 1, 32, 32) * 2 - 1  # grey input is repeated to three channels
    feats = model.forward_features(x, ["layer4", "pool", "logits"])
    assert model.layer_names == ("stem", "layer1", "layer2", "layer3", "layer4", "pool", "logits")
    assert model.encoder_layer == "pool" and feats["pool"].shape == (2, 512) and feats["logits"].shape == (2, 7)
    assert torch.equal(model.forward_from(feats["pool"], "pool"), feats["logits"])


def test_weights_come_from_a_local_file_with_a_new_head(tmp_path):
    net = _imagenet_file(tmp_path / "r18.pth")
    model = build_backbone(BackboneParams(arch="resnet18", size=32, weights=tmp_path / "r18.pth"), num_classes=5)
    assert torch.equal(model.stages["layer3"][0].conv1.weight, net.layer3[0].conv1.weight)
    assert model.stages["logits"].out_features == 5
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    net.eval(), model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net.fc = torch.nn.Identity()
    assert torch.allclose(model.encode(x), net(((x + 1) / 2 - mean) / std), atol=1e-5)  # ImageNet normalisation


def test_pretrained_reads_the_hub_cache_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(PipelineError, match=r"not in torch's hub cache .*resnet18-f37072fd\.pth.*download https://"):
        build_backbone(BackboneParams(arch="resnet18", size=32, pretrained=True), num_classes=3)
    (tmp_path / "checkpoints").mkdir()
    net = _imagenet_file(hub_cache_files("resnet18")[0])
    model = build_backbone(BackboneParams(arch="resnet18", size=32, pretrained=True), num_classes=3)
    assert torch.equal(model.stages["stem"][1].weight, net.conv1.weight)


@pytest.mark.parametrize("content", ["missing", "garbage", "other net"])
def test_a_missing_or_wrong_weights_file_is_one_line(tmp_path, content):
    path = tmp_path / "w.pth"
    if content == "garbage":
        path.write_text("not a checkpoint")
    elif content == "other net":
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    arch = "resnet50" if content == "other net" else "resnet18"
    with pytest.raises(PipelineError, match=str(path)) as err:
        build_backbone(BackboneParams(arch=arch, size=32, weights=path), num_classes=3)
    assert "\n" not in str(err.value)


def test_gam_matching_folds_into_the_head_and_keeps_an_explicit_affine_elsewhere():
    model = build_backbone(BackboneParams(arch="resnet18", size=32), num_classes=4).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    before = model.forward_features(x, ["pool", "logits"])
    assert model.match_layer("logits", torch.full((4,), 2.0), torch.ones(4))
    assert not model.match_layer("pool", torch.full((512,), 3.0), torch.zeros(512))
    after = model.forward_features(x, ["pool"])["pool"]
    assert torch.allclose(after, 3 * before["pool"]) and model.matched_layers() == {"pool": 512}


def test_a_shape_probe_of_one_image_works_in_train_mode_and_leaves_batch_norm_alone():
    model = build_backbone(BackboneParams(arch="resnet18", size=32), num_classes=4).train()
    stats = model.stages["layer4"][1].bn2.running_mean.clone()
    shapes = model.probe(torch.rand(1, 3, 32, 32), ["layer4", "pool"])  # 1x1 at layer4: train-mode BN would fail
    assert shapes["pool"].shape == (1, 512) and not shapes["pool"].requires_grad
    assert torch.equal(model.stages["layer4"][1].bn2.running_mean, stats) and model.training
    assert all(m.training for m in model.modules())
