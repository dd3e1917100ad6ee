"""Training under torchrun: sharded batches, averaged gradients, rank-0 writes (CPU, gloo, 2 processes)."""

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pipeline_lib import batches, distributed, training
from pipeline_lib.artifacts import atomic_dir, save_checkpoint, write_json
from pipeline_lib.cli import finish_training
from pipeline_lib.config import TrainSupervisedParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.methods.adda import adapt_features
from pipeline_lib.methods.cycada_params import AdaptFeaturesParams
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.paths import history
from pipeline_lib.runtime import seed_everything

WORLD = 2
CFG = TrainSupervisedParams(lr=1e-3, batch_size=16, epochs=2, checkpoint_every=1)
ADDA = AdaptFeaturesParams(lr=1e-3, batch_size=8, max_epochs=2, gate_accuracy=0.0)
#: DDP against one process on the same global batches: the same sums in another order (measured: see docs)
ATOL = 1e-5


def _images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1 + shift


def _labelled() -> TensorDataset:
    return TensorDataset(_images(64, 0), torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1)))


def _lenet_without_dropout() -> LeNet:
    """Dropout masks are each process's own draws (a single process draws other ones), so equivalence is
    tested without them."""
    model = LeNet()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.p = 0.0
    return model


def _train_supervised(out: Path) -> tuple[nn.Module, training.TrainResult]:
    """What stages.train_supervised does: train, save the checkpoint, write the history."""
    gen = seed_everything(0)
    model = _lenet_without_dropout()
    result = training.train_supervised(model, _labelled(), CFG, torch.device("cpu"), gen, out, {"resume_key": "k"})
    save_checkpoint(out, model.state_dict(), {})
    finish_training(out, result)
    return model, result


def _adapt(out: Path) -> tuple[nn.Module, training.TrainResult]:
    torch.manual_seed(0)
    return adapt_features(LeNet().eval(), TensorDataset(_images(32, 2)), TensorDataset(_images(32, 3, shift=0.5)),
                          ADDA, torch.device("cpu"), 0, out, "k")


def _precise_bn() -> dict[str, torch.Tensor]:
    """A conv + batch-norm net's running statistics re-estimated on 4 (sharded) batches of 16."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    loader = batches.shuffled_loader(TensorDataset(_images(64, 4)), 16, torch.Generator().manual_seed(0))
    training.recompute_batchnorm(net, loader, torch.device("cpu"), max_batches=4)
    return {k: v for k, v in net[1].state_dict().items() if k.startswith("running")}


def _fail() -> None:
    raise PipelineError("the stage lock is held")


def _error_of(action) -> str | None:
    try:
        action()
    except PipelineError as err:
        return str(err)
    return None


def _worker(rank: int, port: int, tmp: Path) -> None:
    """One torchrun process: the environment torchrun sets, then the jobs; results go to tmp/result<rank>.pt."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    distributed.init()
    try:
        model, result = _train_supervised(tmp / f"rank{rank}" / "m.pt")
        adapted, adapt_result = _adapt(tmp / f"rank{rank}" / "a.pt")
        nan_here = torch.tensor(math.nan if rank == 1 else 1.0)  # one rank's NaN must stop both
        errors = {"on_main": _error_of(lambda: distributed.on_main(_fail)),
                  "nan": _error_of(lambda: training.check_finite(nan_here, "step 1", "fix"))}
        torch.save({"model": model.state_dict(), "history": result.history, "adapted": adapted.state_dict(),
                    "adapt_history": adapt_result.history, "errors": errors, "bn": _precise_bn()},
                   tmp / f"result{rank}.pt")
    finally:
        distributed.teardown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Two gloo processes run the jobs of :func:`_worker` once for every test here."""
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), tmp), nprocs=WORLD, join=True)
    return tmp, [torch.load(tmp / f"result{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains_on_the_same_global_batches(ddp, tmp_path):
    _, (rank0, rank1) = ddp
    single, single_result = _train_supervised(tmp_path / "m.pt")
    worst = 0.0
    for name, expected in single.state_dict().items():
        torch.testing.assert_close(rank0["model"][name], rank1["model"][name], rtol=0, atol=0, msg=name)
        worst = max(worst, (rank0["model"][name] - expected).abs().max().item())
        torch.testing.assert_close(rank0["model"][name], expected, rtol=0, atol=ATOL, msg=name)
    print(f"max |DDP - single process| over LeNet's parameters after 2 epochs: {worst:.3g}")
    for logged, expected in zip(rank0["history"], single_result.history):  # rank 0 logs the global means
        assert logged["loss"] == pytest.approx(expected["loss"], rel=1e-5)
        assert logged["train_acc"] == pytest.approx(expected["train_acc"], abs=1 / 64)


@pytest.mark.slow
def test_only_rank_0_writes_the_checkpoint_history_and_partials(ddp):
    tmp, _ = ddp
    assert (tmp / "rank0" / "m.pt").is_file() and history(tmp / "rank0" / "m.pt").is_file()
    assert not (tmp / "rank0" / "m.pt.partial").exists()  # written after epoch 1, dropped at the end
    assert not (tmp / "rank1").exists()  # not even the folder


@pytest.mark.slow
def test_an_adversarial_loop_ends_with_the_same_weights_on_every_process(ddp):
    _, (rank0, rank1) = ddp
    assert rank0["adapt_history"][0]["encoder_updates"] > 0
    torch.manual_seed(0)
    start = LeNet().state_dict()
    assert not torch.equal(rank0["adapted"]["stages.fc1.2.weight"], start["stages.fc1.2.weight"])
    for name, value in rank0["adapted"].items():
        torch.testing.assert_close(value, rank1["adapted"][name], rtol=0, atol=0, msg=name)
    logged = [[{k: v for k, v in row.items() if k != "seconds"} for row in r["adapt_history"]] for r in (rank0, rank1)]
    assert logged[0] == logged[1]  # the gate opened alike: the same updates on both


@pytest.mark.slow
def test_a_failure_on_one_process_stops_every_process_with_the_same_line(ddp):
    _, results = ddp
    assert [r["errors"]["on_main"] for r in results] == ["the stage lock is held"] * WORLD
    assert [r["errors"]["nan"] for r in results] == ["loss became nan at step 1: fix"] * WORLD


@pytest.mark.slow
def test_batch_norm_statistics_end_the_same_on_every_process(ddp):
    """On the CPU (no SyncBatchNorm) each process measures its shares; the averaged mean is the global one."""
    _, (rank0, rank1) = ddp
    single = _precise_bn()
    for name in ("running_mean", "running_var"):
        torch.testing.assert_close(rank0["bn"][name], rank1["bn"][name], rtol=0, atol=0)
    torch.testing.assert_close(rank0["bn"]["running_mean"], single["running_mean"], rtol=0, atol=1e-6)
    torch.testing.assert_close(rank0["bn"]["running_var"], single["running_var"], rtol=0.05, atol=0)


# ---- sharded batches (no processes needed: the shard follows RANK and WORLD_SIZE) ----------------------

def _batches(loader) -> list[list[int]]:
    return [x[:, 0].tolist() for (x,) in loader]


def _indexed(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n)[:, None])


@pytest.mark.parametrize("size,batch", [(64, 16), (70, 16), (10, 16)])
def test_one_process_gets_the_batches_a_shuffling_dataloader_gives(size, batch):
    ours, theirs = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    data = _indexed(size)
    for _ in range(3):  # epochs: the generator moves on identically
        expected = _batches(DataLoader(data, batch_size=batch, shuffle=True, generator=theirs, drop_last=size > batch))
        assert _batches(batches.shuffled_loader(data, batch, ours)) == expected
    assert torch.equal(ours.get_state(), theirs.get_state())


def test_the_shards_of_a_batch_together_are_the_single_process_batch(monkeypatch):
    data = _indexed(70)
    single = _batches(batches.shuffled_loader(data, 16, torch.Generator().manual_seed(3)))
    monkeypatch.setenv("WORLD_SIZE", "2")
    shards = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        shards.append(_batches(batches.shuffled_loader(data, 16, torch.Generator().manual_seed(3))))
    assert len(shards[0]) == len(shards[1]) == len(single) == 4
    for k, batch in enumerate(single):
        assert len(shards[0][k]) == len(shards[1][k]) == 8
        assert shards[0][k] + shards[1][k] == batch


def test_a_batch_size_that_does_not_split_over_the_processes_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(PipelineError, match=r"^batch_size 10 does not split .* 4 processes .* multiple of 4") as err:
        batches.shuffled_loader(_indexed(40), 10, torch.Generator())
    assert "\n" not in str(err.value)


def test_off_rank_0_nothing_is_written(monkeypatch, tmp_path):
    monkeypatch.setenv("RANK", "1")
    save_checkpoint(tmp_path / "out" / "m.pt", {"w": torch.ones(1)}, {})
    finish_training(tmp_path / "out" / "m.pt", training.TrainResult([{"epoch": 1, "loss": 1.0}], 1.0, 0))
    write_json(tmp_path / "out" / "metrics.json", {"acc": 1.0})
    with atomic_dir(tmp_path / "out" / "shards") as folder:
        (folder / "a.npy").write_bytes(b"x")
    assert not (tmp_path / "out").exists()


def test_a_world_size_without_torchrun_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(PipelineError,
                       match=r"^WORLD_SIZE is 2 but MASTER_ADDR and MASTER_PORT unset: start .* torchrun"):
        distributed.init()
