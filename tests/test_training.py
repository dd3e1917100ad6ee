import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib import training
from pipeline_lib.config import TrainSupervisedParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.runtime import resolve_device, seed_everything

CFG = TrainSupervisedParams(lr=1e-3, batch_size=16, epochs=2)


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 28, 28, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (64,), generator=gen)
    return x, y


def _train(tmp_path, cfg=CFG, seed=0):
    gen = seed_everything(seed)
    model = LeNet()
    result = training.train_supervised(model, TensorDataset(*_data()), cfg, torch.device("cpu"), gen,
                                       tmp_path / "m.pt", {"resume_key": "k"})
    return model, result


def test_same_seed_same_weights_different_seed_different(tmp_path):
    a, ra = _train(tmp_path / "a")
    b, _ = _train(tmp_path / "b")
    c, _ = _train(tmp_path / "c", seed=1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.state_dict().values(), c.state_dict().values()))
    assert [h["epoch"] for h in ra.history] == [1, 2] and ra.history[0]["loss"] > 0


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    full, _ = _train(tmp_path / "full")
    # kill the run during epoch 2: the epoch-1 checkpoint stays behind as <out>.partial
    real_check = training.check_finite

    def dying_check(loss, where, hint):
        if where.startswith("epoch 2"):
            raise KeyboardInterrupt
        real_check(loss, where, hint)

    monkeypatch.setattr(training, "check_finite", dying_check)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed")
    assert (tmp_path / "resumed" / "m.pt.partial").is_file()
    assert not (tmp_path / "resumed" / "m.pt").exists()
    monkeypatch.setattr(training, "check_finite", real_check)
    resumed, result = _train(tmp_path / "resumed")
    assert result.resumed_from_epoch == 1
    for pa, pb in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    gen = seed_everything(0)
    x, y = _data()
    x[:, 0, 0, 0] = float("nan")
    with pytest.raises(PipelineError, match="loss became nan at epoch 1 step 1: lower train_supervised.lr"):
        training.train_supervised(LeNet(), TensorDataset(x, y), CFG, torch.device("cpu"), gen, tmp_path / "m.pt", {})


def test_device_auto_is_cpu_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(PipelineError, match="no CUDA GPU"):
        resolve_device("cuda")
