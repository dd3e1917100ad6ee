"""Every training loop runs under bf16 autocast, the mixed precision the stages use on CUDA.

On the CPU :func:`pipeline_lib.runtime.autocast` is off, so a tensor made under autocast and passed to a
float32 module outside it (a logging pass, a diagnostic) fails only on a GPU. The first GPU run of the
tiny DAG found two such paths (I2IAdapt's critic estimates, GAM's discriminator accuracy). Here the same
bf16 autocast is switched on for the CPU, so those paths fail without a GPU."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import TensorDataset

import pipeline_lib.runtime as runtime
from pipeline_lib.config import TrainSupervisedParams
from pipeline_lib.evaluation import predict
from pipeline_lib.methods.adda import adapt_features
from pipeline_lib.methods.calibrator import train_calibrator
from pipeline_lib.methods.cycada import CycleGAN, train_cyclegan, translate
from pipeline_lib.methods.gam import gaussian_match, match_activations
from pipeline_lib.methods.i2i import InputAdapter, train_i2i
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.models.segmenters import SEGMENTERS
from pipeline_lib.training import train_supervised

import test_adda
import test_calibrator
import test_cycada
import test_gam
import test_i2i

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def bf16_on_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "MIXED_PRECISION_DEVICES", ("cuda", "cpu"))
    with runtime.autocast(CPU):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")


def _finite(history: list[dict]) -> None:
    for row in history:
        for key, value in row.items():
            assert not isinstance(value, float) or math.isfinite(value), key


def test_i2i_every_term_and_critic(tmp_path):
    torch.manual_seed(0)
    model = LeNet(10, 1, 32)
    _, result = train_i2i(model, InputAdapter(model, size=32, grey=True), test_i2i._digits(24, 0),
                          TensorDataset(test_i2i._digits(24, 1).tensors[0]), test_i2i.SMALL,
                          test_i2i.SMALL.weights("all"), CPU, 0, tmp_path / "i.pt", None)
    _finite(result.history)
    assert "w_d_z" in result.history[-1]


def test_gam_adversarial_and_gaussian_matching(tmp_path):
    torch.manual_seed(0)
    model = LeNet().eval()
    source, target = test_gam._digits(), test_gam._digits(shift=0.5, seed=1)
    _, result = match_activations(model, model, source, target, test_gam.CFG, ["fc1", "logits"], CPU, 0,
                                  tmp_path / "m.pt", None)
    _finite(result.history)
    gaussian_match(model, source, target, ["conv1", "fc1"], CPU, batch_size=32)


def test_adda_feature_adaptation(tmp_path):
    torch.manual_seed(0)
    cfg = test_adda.CFG.model_copy(update={"max_epochs": 1, "gate_accuracy": 0.0})
    _, result = adapt_features(LeNet().eval(), TensorDataset(test_adda._data()),
                               TensorDataset(test_adda._data(shift=0.5, seed=1)), cfg, CPU, 0, tmp_path / "a.pt", None)
    _finite(result.history)


def test_calibrator_training(tmp_path):
    torch.manual_seed(0)
    _, result = train_calibrator(LeNet(num_classes=10, in_channels=1, image_size=28),
                                 test_calibrator._digits(16, 0.0, 1), test_calibrator._digits(16, 0.5, 2),
                                 test_calibrator.TINY, CPU, 0, tmp_path / "c.pt", None)
    _finite(result.history)


def test_cyclegan_with_its_semantic_loss_and_translation(tmp_path):
    torch.manual_seed(0)
    params = test_cycada._params(semantic_loss="frozen")
    net = CycleGAN.build(1, params)
    source, target = test_cycada._domains()
    result = train_cyclegan(net, LeNet(), source, target, params, CPU, 0, tmp_path / "c.pt", None)
    _finite(result.history)
    assert translate(net.g_st, source.tensors[0][:4], CPU, batch_size=2).dtype == source.tensors[0].dtype


@pytest.mark.parametrize("arch,shape", [("lenet", (1, 28, 28)), ("lraspp_mobilenet_v3", (3, 32, 32))])
def test_supervised_training_and_prediction(arch, shape, tmp_path):
    torch.manual_seed(0)
    segmentation = arch != "lenet"
    model = SEGMENTERS[arch](19) if segmentation else LeNet()
    x = torch.rand(8, *shape) * 2 - 1
    y = torch.randint(0, 10, (8, *shape[1:]) if segmentation else (8,))
    params = TrainSupervisedParams(lr=1e-3, batch_size=4, epochs=1, batchnorm_batches=1)
    train_supervised(model, TensorDataset(x, y), params, CPU, torch.Generator().manual_seed(0), tmp_path / "m.pt", {})
    assert predict(model, x, CPU, batch_size=4).shape[0] == 8


def test_feature_map_regression_and_inversion(tmp_path):
    from pipeline_lib.methods.fmr import PairedSet, invert_features, regress_features
    from pipeline_lib.methods.fmr_params import RegressParams
    torch.manual_seed(0)
    h1, x = LeNet(10, 3, 32).eval(), torch.rand(16, 3, 32, 32) * 2 - 1
    cfg = RegressParams(lr=1e-3, batch_size=8, epochs=1, steps_per_epoch=2)
    _, result = regress_features(h1, PairedSet(TensorDataset(x), TensorDataset(-x)), {"conv1": 0.2, "conv2": 0.9},
                                 cfg, CPU, 0, tmp_path / "h2.pt", None)
    _finite(result.history)
    seen = invert_features(h1, x[:2], ["conv2"], ["conv1", "conv2"], 3, 0.5, 0.9, 1.0, 1, CPU)
    assert seen.dtype == torch.float32 and torch.isfinite(seen).all()
