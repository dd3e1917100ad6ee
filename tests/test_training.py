import argparse
import re

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib import training
from pipeline_lib.config import DivergenceParams, TrainSupervisedParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.history import read_history
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


# ---- partials that cannot be used -----------------------------------------------------------------------------

def _partial_of_a_32px_model(path):
    """A complete partial, left by a run of LeNet on 32x32 images under the same key."""
    gen = seed_everything(0)
    x, y = _data()
    data = TensorDataset(torch.nn.functional.interpolate(x, size=32), y)
    with pytest.raises(KeyboardInterrupt):
        training.train_supervised(LeNet(image_size=32), data, CFG, torch.device("cpu"), gen, path,
                                  {"resume_key": "k"}, hint="stop")
    return training.partial_path(path)


@pytest.mark.parametrize("kind", ["garbage", "four bytes", "cut short", "other model size", "missing part"])
def test_a_partial_that_cannot_be_read_or_does_not_fit_is_discarded_with_one_line(tmp_path, monkeypatch, capsys,
                                                                                   kind):
    fresh, _ = _train(tmp_path / "fresh")
    partial = training.partial_path(tmp_path / "m.pt")
    real_check = training.check_finite

    def dying_check(loss, where, hint):  # kill a run during epoch 2: its epoch-1 partial stays behind
        if where.startswith("epoch 2"):
            raise KeyboardInterrupt
        real_check(loss, where, hint)

    monkeypatch.setattr(training, "check_finite", dying_check)
    if kind == "garbage":
        partial.write_bytes(b"not a checkpoint")
    elif kind == "four bytes":
        partial.write_bytes(b"junk")
    elif kind == "cut short":
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path)
        partial.write_bytes(partial.read_bytes()[:5000])
    elif kind == "other model size":
        assert _partial_of_a_32px_model(tmp_path / "m.pt") == partial
    else:
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path)
        ckpt = torch.load(partial, weights_only=True)
        del ckpt["state"]["optimizer"]
        torch.save(ckpt, partial)
    monkeypatch.setattr(training, "check_finite", real_check)
    capsys.readouterr()
    model, result = _train(tmp_path)  # the same key "k": only the contents are wrong
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "discarding" in line]
    if kind in ("garbage", "four bytes", "cut short"):
        assert lines == [f"discarding {partial}: cannot be read; starting fresh"], out
    else:
        assert len(lines) == 1 and lines[0].startswith(f"discarding {partial}: does not fit this model (") \
            and lines[0].endswith("); starting fresh"), out
    assert result.resumed_from_epoch == 0
    # nothing of the bad partial stuck: the weights of a run that never saw it (the conv layers of the
    # 32px model load before fc1 fails, and are put back)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


# ---- divergence ------------------------------------------------------------------------------------------------

def test_loss_growth_measures_from_the_first_steps_and_keeps_exploded_values_out_of_the_start():
    growth = training.LossGrowth(1000.0, "x: loss")
    growth.check(2.0, "step 1", "lower it")
    with pytest.raises(PipelineError, match=r"^x: loss grew from 2 to 2\.5e\+03 by step 2 \(more than "
                                            r"divergence\.loss_growth = 1000x its start\): lower it$"):
        growth.check(2500.0, "step 2", "lower it")
    growth = training.LossGrowth(1000.0, "x: loss")
    for value in (2.0, 1.0, 3.0, 0.5, 4.0, 0.01, float("nan"), float("inf")):  # start: the first five, 2.1
        growth.check(torch.tensor(value), "step", "hint")
    growth.check(2099.0, "step", "hint")
    resumed = training.LossGrowth(1000.0, "x: loss")
    resumed.load_state_dict(growth.state_dict())
    with pytest.raises(PipelineError, match="grew from 2.1 to 2.2e"):
        resumed.check(2200.0, "step", "hint")
    training.LossGrowth(None, "off").check(1e30, "step", "hint")


def _stage_workspace(tmp_path, monkeypatch, tiny_raw, **train):
    """A tiny prepared mnist5k in ``tmp_path`` (now the working directory); the params of the stage run."""
    from pipeline_lib.config import parse_params
    from pipeline_lib.domains.base import DomainData, Split
    from pipeline_lib.domains.store import save_domain

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)

    def split(n):
        return Split(rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), rng.integers(0, 10, n))

    save_domain("data/domains/mnist5k.npz", DomainData("mnist5k", split(64), split(16)))
    tiny_raw["device"] = "cpu"
    tiny_raw["train_supervised"].update(epochs=3, batch_size=16, **train)
    return parse_params(tiny_raw)


def test_adam_at_lr_1e6_stops_the_stage_with_one_line_naming_the_lr_and_no_checkpoint(tmp_path, monkeypatch,
                                                                                      tiny_raw):
    from pipeline_lib import paths
    from stages import train_supervised as stage

    params = _stage_workspace(tmp_path, monkeypatch, tiny_raw, optimizer="adam", lr=1e6)
    with pytest.raises(PipelineError) as err:
        stage.main(argparse.Namespace(domain="mnist5k", backbone="lenet", seed=0), params)
    assert re.fullmatch(r"mnist5k/lenet/seed0: loss grew from 2\.\d+ to \d\.\d+e\+\d+ by epoch 1 step \d+ \(more than "
                        r"divergence\.loss_growth = 1000x its start\): lower train_supervised\.lr in params\.yaml",
                        str(err.value)), str(err.value)
    assert not paths.supervised_model("mnist5k", "lenet", 0).exists()
    # with the test off, the same run goes to the end at an absurd loss: what used to be written
    params = params.model_copy(update={"divergence": DivergenceParams(loss_growth=None, chance_margin=None)})
    stage.main(argparse.Namespace(domain="mnist5k", backbone="lenet", seed=0), params)
    assert read_history(paths.history(paths.supervised_model("mnist5k", "lenet", 0)))["loss"].min() > 1e6


def _learnable(n=160):
    """Digits a LeNet learns within a few steps: each class is its own grey level."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = (y[:, None, None, None] / 4.5 - 1) + 0.05 * torch.randn(n, 1, 28, 28, generator=gen)
    return TensorDataset(x.clamp(-1, 1), y)


def test_a_normal_run_does_not_trip_either_test(tmp_path):
    gen = seed_everything(0)
    cfg = TrainSupervisedParams(lr=1e-3, batch_size=16, epochs=2)
    result = training.train_supervised(LeNet(), _learnable(), cfg, torch.device("cpu"), gen, tmp_path / "m.pt", {},
                                       divergence=DivergenceParams(chance_min_steps=1))
    assert max(row["train_acc"] for row in result.history) > 0.1 + 0.02


def test_training_accuracy_that_stays_at_chance_stops_a_long_enough_run(tmp_path, monkeypatch):
    """Every image comes with each of the 10 labels and the optimiser never moves the weights (dropout off):
    the training accuracy is exactly chance in every epoch; 2 epochs of 10 steps."""
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, closure=None: None)
    x = _learnable(16)[:][0].repeat_interleave(10, dim=0)
    y = torch.arange(10).repeat(16)

    def run(min_steps):
        gen = seed_everything(0)
        model = LeNet()
        for m in model.modules():
            if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d)):
                m.p = 0.0
        cfg = TrainSupervisedParams(lr=1e-3, batch_size=16, epochs=2)
        return training.train_supervised(model, TensorDataset(x, y), cfg, torch.device("cpu"), gen,
                                         tmp_path / "m.pt", {}, desc="mnist5k/lenet/seed0",
                                         hint="lower train_supervised.lr in params.yaml",
                                         divergence=DivergenceParams(chance_min_steps=min_steps))

    with pytest.raises(PipelineError, match=r"^mnist5k/lenet/seed0: training accuracy stayed within "
                                            r"divergence\.chance_margin = 0\.02 of chance \(0\.1 for 10 classes\) "
                                            r"in all 2 epoch\(s\), 20 steps \(last 0\.100\): lower "
                                            r"train_supervised\.lr in params\.yaml, or check that the labels match"):
        run(min_steps=20)
    assert [row["train_acc"] for row in run(min_steps=21).history] == [0.1, 0.1]  # too short to judge


def test_a_step_budget_cuts_a_large_source_and_keeps_a_small_sources_epochs():
    from pipeline_lib.training import budget_epochs
    assert budget_epochs(100, 468, 14000) == 30  # MNIST: 30 epochs of 468 batches
    assert budget_epochs(100, 57, 14000) == 100  # USPS: all 100 (5,700 steps)
    assert budget_epochs(200, 57, 5000) == 88  # rounded up to whole epochs
    assert budget_epochs(7, 10, None) == 7 and budget_epochs(7, 0, 5) == 5
