import torch
from torch.utils.data import TensorDataset

from pipeline_lib.methods.cycada_params import AdaptFeaturesParams
from pipeline_lib.methods.adda import AccuracyGate, adapt_features, encoder_parameter_names
from pipeline_lib.models.lenet import LeNet

CFG = AdaptFeaturesParams(lr=1e-3, batch_size=16, max_epochs=3)


def _data(n=64, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=g) * 2 - 1 + shift


def test_gate_opens_only_above_the_threshold_over_the_window():
    assert not AccuracyGate(0.6, window=1).update(0.6)  # strictly above
    gate = AccuracyGate(0.6, window=2)
    assert not gate.update(0.5)
    assert gate.update(0.8)       # mean 0.65
    assert not gate.update(0.3)   # mean 0.55
    assert AccuracyGate(0.6, 1).update(0.61)


def test_encoder_is_everything_up_to_the_encoder_layer():
    names = encoder_parameter_names(LeNet())
    assert names and all(n.split(".")[1] in {"conv1", "conv2", "fc1"} for n in names)
    assert not any("logits" in n for n in names)


def test_closed_gate_blocks_every_encoder_update_and_stops_after_an_epoch(tmp_path):
    torch.manual_seed(0)
    model = LeNet().eval()
    same = _data()
    cfg = CFG.model_copy(update={"gate_accuracy": 1.0})  # no discriminator can be *above* 100%
    adapted, result = adapt_features(model, TensorDataset(same), TensorDataset(same.clone()), cfg,
                                     torch.device("cpu"), 0, tmp_path / "a.pt", None)
    assert len(result.history) == 1 and result.history[0]["encoder_updates"] == 0
    for (name, a), b in zip(adapted.state_dict().items(), model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_open_gate_moves_only_the_encoder_and_the_source_model_stays_frozen(tmp_path):
    torch.manual_seed(0)
    model = LeNet().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = CFG.model_copy(update={"gate_accuracy": 0.0, "max_epochs": 1})
    adapted, result = adapt_features(model, TensorDataset(_data()), TensorDataset(_data(shift=0.5, seed=1)), cfg,
                                     torch.device("cpu"), 0, tmp_path / "a.pt", None)
    assert result.history[0]["encoder_updates"] == result.history[0]["steps"] > 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    after = adapted.state_dict()
    assert not torch.equal(after["stages.fc1.2.weight"], before["stages.fc1.2.weight"])
    torch.testing.assert_close(after["stages.logits.2.weight"], before["stages.logits.2.weight"], rtol=0, atol=0)


def test_weight_regulariser_keeps_the_encoder_closer_to_the_source(tmp_path):
    def drift(weight_reg):
        torch.manual_seed(0)
        model = LeNet().eval()
        cfg = CFG.model_copy(update={"gate_accuracy": 0.0, "max_epochs": 1, "weight_reg": weight_reg, "lr": 1e-2})
        adapted, _ = adapt_features(model, TensorDataset(_data()), TensorDataset(_data(shift=0.5, seed=1)), cfg,
                                    torch.device("cpu"), 0, tmp_path / f"{weight_reg}.pt", None)
        return sum((a - b).pow(2).sum() for a, b in zip(adapted.parameters(), model.parameters())).item()

    assert drift(10.0) < drift(0.0)
