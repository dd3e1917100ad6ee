"""The one training loop (:func:`pipeline_lib.training.fit`) every method runs on."""

import ast
import inspect
import textwrap

import pytest
import torch

from pipeline_lib import training
from pipeline_lib.artifacts import load_checkpoint
from pipeline_lib.methods import adda, calibrator, cycada, fmr, gam, i2i
from pipeline_lib.training import At, Loop, fit


class Counter(torch.nn.Module):
    """A stand-in for what a method trains: one parameter the steps add to."""

    def __init__(self) -> None:
        super().__init__()
        self.total = torch.nn.Parameter(torch.zeros(()), requires_grad=False)


def _loop(counter, seen, **kw):
    def step(batch, at):
        seen.append((at.epoch, at.step, at.iteration, batch))
        counter.total += batch
        logs = {"value": float(batch)}
        if batch % 2:  # logged on some steps only: the sum still divides by all the epoch's steps
            logs["odd"] = 1.0
        return logs
    base = dict(desc="toy", epochs=3, steps=2, batches=lambda: iter([1, 2, 3, 4]), step=step, checkpoint_every=1)
    return Loop(**{**base, **kw})


def test_each_epoch_runs_its_steps_and_averages_what_they_log_in_the_order_first_logged(tmp_path):
    seen, counter = [], Counter()
    result = fit(_loop(counter, seen), tmp_path / "out.pt", None, {"counter": counter}, {})
    assert [(e, s, i) for e, s, i, _ in seen] == [(0, 0, 0), (0, 1, 1), (1, 0, 2), (1, 1, 3), (2, 0, 4), (2, 1, 5)]
    assert [b for *_, b in seen] == [1, 2] * 3  # a fresh batches() each epoch, cut at `steps`
    assert [list(row) for row in result.history] == [["epoch", "value", "odd", "seconds"]] * 3
    assert result.history[0]["value"] == 1.5 and result.history[0]["odd"] == 0.5
    assert counter.total.item() == 9


def test_an_epoch_ends_early_when_its_batches_run_out_and_a_summary_replaces_the_means(tmp_path):
    seen, counter = [], Counter()
    loop = _loop(counter, seen, steps=10, summary=lambda sums, steps: {"sum": sums["value"], "steps": steps})
    result = fit(loop, tmp_path / "out.pt", None, {"counter": counter}, {})
    assert [(row["sum"], row["steps"]) for row in result.history] == [(10.0, 4)] * 3


def test_stop_ends_the_run_after_its_epoch_and_the_monitor_lands_in_the_history(tmp_path, capsys):
    seen, counter = [], Counter()
    loop = _loop(counter, seen, monitor=lambda: counter.total.item(),
                 stop=lambda row, epoch: "enough" if epoch == 2 else None)
    result = fit(loop, tmp_path / "out.pt", "key", {"counter": counter}, {})
    assert [row["target_metric"] for row in result.history] == [3.0, 6.0]
    assert "toy: enough" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "out.pt.partial")["meta"]["epoch"] == 1  # the stopping epoch is the last


def test_an_interrupted_run_resumes_after_its_last_checkpointed_epoch(tmp_path):
    seen, counter = [], Counter()

    def dying(batch, at):
        if at.epoch == 2:
            raise KeyboardInterrupt
        counter.total += batch
        return {"value": float(batch)}

    with pytest.raises(KeyboardInterrupt):
        fit(_loop(counter, seen, step=dying), tmp_path / "out.pt", "key", {"counter": counter}, {})
    resumed = Counter()
    result = fit(_loop(resumed, seen), tmp_path / "out.pt", "key", {"counter": resumed}, {})
    assert result.resumed_from_epoch == 2 and resumed.total.item() == 9  # 6 restored, 3 from epoch 3
    assert [e for e, *_ in seen] == [2, 2] and len(result.history) == 3


def test_at_names_the_step_from_one():
    assert At(epoch=2, step=4, steps=10).where == "epoch 3 step 5"
    assert At(epoch=2, step=4, steps=10).iteration == 24


@pytest.mark.parametrize("trainer", [training.train_supervised, adda.adapt_features, cycada.train_cyclegan,
                                     gam.match_activations, calibrator.train_calibrator, fmr.regress_features,
                                     i2i.train_i2i])
def test_every_trainer_runs_on_fit_with_a_body_of_at_most_40_lines(trainer):
    source = textwrap.dedent(inspect.getsource(trainer))
    node = ast.parse(source).body[0]
    body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body  # past the docstring
    assert body[-1].end_lineno - body[0].lineno + 1 <= 40
    assert any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "fit" for n in ast.walk(node))
    assert not any(isinstance(n, ast.Call) and getattr(n.func, "id", None) in ("epoch_bar", "step_bar", "Resumable")
                   for n in ast.walk(node))
