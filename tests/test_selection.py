"""Checkpoint selection: the series a training run keeps, the select stage's scoring and choices, the validator
table, and the DAG's dependencies of ``select`` (:mod:`pipeline_lib.selection`, ``stages/select.py``)."""

import math

import pytest
import torch
from torch.utils.data import TensorDataset

from pipeline_lib import paths, registry, selection
from pipeline_lib.artifacts import load_checkpoint, publish_series, save_checkpoint
from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages
from pipeline_lib.models.lenet import LeNet
from pipeline_lib.training import Loop, Series, SeriesPlan, fit
from stages.select import _images


@pytest.mark.parametrize("every,keep,total,kept", [
    (1, 4, 3, (1, 2, 3)),             # fewer epochs than kept: all
    (1, 4, 10, (1, 4, 7, 10)),        # thinned evenly, first and last kept
    (2, 10, 7, (2, 4, 6, 7)),         # every second epoch, and the last
    (1, 1, 5, (5,)),                  # one: the last
    (3, 2, 10, (3, 10)),
])
def test_a_series_plan_keeps_every_nth_epoch_thinned_evenly_with_the_last_always(every, keep, total, kept):
    assert SeriesPlan(every, keep).epochs(total) == kept


class Weight(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()), requires_grad=False)


def _loop(module, epochs=4, stop=None):
    def step(batch, at):
        module.w += 1
        return {"w": module.w.item()}
    return Loop("toy", epochs, 1, lambda: iter([0]), step, checkpoint_every=1, stop=stop)


def test_a_run_keeps_its_series_and_finishing_moves_it_beside_the_checkpoint_with_its_meta(tmp_path):
    module, out = Weight(), tmp_path / "model.pt"
    fit(_loop(module), out, "key", {"m": module}, {}, Series(SeriesPlan(1, 3), out, module))
    staged = sorted(p.name for p in (tmp_path / "model.series.partial").iterdir())
    assert staged == ["epoch0001.pt", "epoch0003.pt", "epoch0004.pt"]  # 1, 2.5 -> 3 (rounded), 4
    final = Weight()
    final.w += 99  # what the stage saves may differ from the last epoch's weights (e.g. after a precise-BN pass)
    save_checkpoint(out, final.state_dict(), {"num_classes": 2})
    assert publish_series(out, paths.series(out)) == paths.series(out)
    kept = {p.name: load_checkpoint(p) for p in sorted(paths.series(out).iterdir())}
    assert [c["state"]["w"].item() for c in kept.values()] == [1.0, 3.0, 99.0]
    assert [c["meta"]["epoch"] for c in kept.values()] == [1, 3, 4]
    assert all(c["meta"]["num_classes"] == 2 for c in kept.values())  # the final meta: the row's loader reads it
    assert not (tmp_path / "model.series.partial").exists()


def test_a_resumed_run_keeps_the_epochs_it_had_and_a_fresh_one_drops_them(tmp_path):
    module, out = Weight(), tmp_path / "model.pt"
    stop = lambda row, epoch: "crash" if epoch == 2 else None  # noqa: E731 (a run cut after epoch 2)
    fit(_loop(module, stop=stop), out, "key", {"m": module}, {}, Series(SeriesPlan(1, 4), out, module))
    (tmp_path / "model.series.partial" / "epoch0002.pt").unlink()  # as if killed before the last epoch's files
    resumed = Weight()
    result = fit(_loop(resumed), out, "key", {"m": resumed}, {}, Series(SeriesPlan(1, 4), out, resumed))
    assert result.resumed_from_epoch == 1
    staged = sorted(p.name for p in (tmp_path / "model.series.partial").iterdir())
    assert staged == ["epoch0001.pt", "epoch0002.pt", "epoch0003.pt", "epoch0004.pt"]
    other = Weight()
    fit(_loop(other, epochs=1), out, "other key", {"m": other}, {}, Series(SeriesPlan(1, 4), out, other))
    assert sorted(p.name for p in (tmp_path / "model.series.partial").iterdir()) == ["epoch0001.pt"]
    fit(_loop(Weight(), epochs=1), out, "k", {"m": Weight()}, {})  # a run that keeps none drops a stale series
    assert not (tmp_path / "model.series.partial").exists()


def test_choose_takes_the_highest_and_a_tie_goes_to_the_later_checkpoint():
    assert selection.choose([0.1, 0.5, 0.2]) == 1
    assert selection.choose([0.5, 0.2, 0.5]) == 2


def test_weighted_spearman_is_one_for_the_same_order_minus_one_reversed_and_weighs_the_top():
    assert selection.weighted_spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert selection.weighted_spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(selection.weighted_spearman([1.0], [1.0]))
    # the same two swapped ranks cost more at the validator's top than at its bottom
    top = selection.weighted_spearman([1, 2, 3, 4], [1, 2, 4, 3])
    bottom = selection.weighted_spearman([1, 2, 3, 4], [2, 1, 3, 4])
    assert top < bottom < 1
    # by hand: ranks x = y = (1, 2, 3) but y swapped at the top: weights (1/3)^2, (2/3)^2, 1
    w = [1 / 9, 4 / 9, 1.0]
    x, y = [1, 2, 3], [1, 3, 2]
    mx, my = (sum(a * b for a, b in zip(w, x)) / sum(w)), (sum(a * b for a, b in zip(w, y)) / sum(w))
    cov = sum(a * (b - mx) * (c - my) for a, b, c in zip(w, x, y))
    sx = sum(a * (b - mx) ** 2 for a, b in zip(w, x))
    sy = sum(a * (c - my) ** 2 for a, c in zip(w, y))
    assert selection.weighted_spearman(x, y) == pytest.approx(cov / math.sqrt(sx * sy))


def _run(seed, metrics, bnm):
    cks = [{"epoch": e + 1, "scores": {"bnm": b}, "target_metric": m} for e, (m, b) in enumerate(zip(metrics, bnm))]
    return {"seed": seed, "checkpoints": cks, "picks": selection.picks(cks, ["bnm"])}


def test_picks_and_the_validator_table_give_each_choice_and_its_regret_against_the_oracle():
    a = _run(0, [0.50, 0.70, 0.60], [0.1, 0.3, 0.2])  # BNM picks the oracle's epoch: no regret
    b = _run(1, [0.80, 0.60, 0.40], [0.1, 0.2, 0.3])  # BNM picks the worst: 40 points
    assert a["picks"] == {"bnm": 1, "last": 2, "oracle": 1}
    assert b["picks"] == {"bnm": 2, "last": 2, "oracle": 0}
    table = {line["validator"]: line for line in selection.validator_table(
        [{"runs": [a, b]}], ["bnm"], lambda name: name == "oracle")}
    assert table["bnm"]["regret_points"] == pytest.approx(20.0)  # (0 + 40) / 2
    assert table["last"]["regret_points"] == pytest.approx((10 + 40) / 2)
    assert table["oracle"]["regret_points"] == 0 and table["oracle"]["reads_target_labels"]
    assert not table["bnm"]["reads_target_labels"] and table["bnm"]["runs"] == 2
    assert table["bnm"]["checkpoints"] == 6


def _lenet(seed):
    torch.manual_seed(seed)
    return LeNet(num_classes=10, in_channels=1, image_size=28).eval()


def test_the_validators_choice_does_not_change_when_the_target_labels_are_garbage():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(64, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.randint(0, 10, (64,), generator=g)
    garbage = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))
    source = TensorDataset(torch.rand(64, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 10, (64,), generator=g))
    source_val, source_labels = _images(source, 16), source.tensors[1]
    models = [_lenet(s) for s in range(3)]

    def choices(target_labels):
        target = _images(TensorDataset(images, target_labels), 16)  # what select reads of the target train split
        cks = [{"epoch": i, "scores": selection.scores(selection.outputs(m, target, torch.device("cpu")),
                                                       selection.outputs(m, source_val, torch.device("cpu")),
                                                       source_labels,
                                                       selection.outputs(m, source_val, torch.device("cpu"))),
                "target_metric": 0.0} for i, m in enumerate(models)]
        return selection.picks(cks, [k for k in cks[0]["scores"]]), cks

    (picks_a, cks_a), (picks_b, cks_b) = choices(labels), choices(garbage)
    assert picks_a == picks_b
    assert [c["scores"] for c in cks_a] == [c["scores"] for c in cks_b]
    assert set(cks_a[0]["scores"]) == {"source_accuracy", "entropy", "im", "bnm", "snd", "dev", "class_ami"}


def _stages(tmp_path):
    params = load_params("params.yaml")
    return {s.name: s for s in build_stages(params, ("mnist5k_mnistm",))}, params


def test_select_reads_every_seed_s_series_and_exactly_its_params_and_evaluate_follows_the_validator(tmp_path):
    stages, params = _stages(tmp_path)
    exp = registry.Experiment(params, "mnist5k_mnistm")
    select = stages["select__mnist5k_mnistm__cycada_feat"]
    series = [str(paths.series(registry.rows()["cycada_feat"].model.checkpoint(exp, s))) for s in exp.seeds]
    assert [d for d in select.deps if d.endswith(".series")] == series
    assert set(select.params) == {"profile", "experiments.mnist5k_mnistm.source", "experiments.mnist5k_mnistm.target",
                                  "experiments.mnist5k_mnistm.backbone", "backbones.lenet_rgb", "evaluate",
                                  "selection.target_samples", "selection.source_samples", "selection.frames",
                                  *[k for k in select.params if k in ("device", "threads_per_job")]}
    assert "pipeline_lib/selection.py" in select.deps and "pipeline_lib/validators.py" in select.deps
    assert "pipeline_lib/methods/adda.py" not in select.deps  # scoring imports no training code
    # who reads which selection key: a change reruns exactly these stages
    readers = {key: sorted({name.split("__")[0] for name, s in stages.items() if key in s.params})
               for key in ("selection.validator", "selection.keep", "selection.target_samples")}
    assert readers["selection.validator"] == ["evaluate", "report"]
    assert readers["selection.target_samples"] == ["select"]
    assert readers["selection.keep"] == ["adapt_features", "match_activations", "train_calibrator", "train_i2i",
                                         "train_task"]  # the stages that keep a series (source-only keeps none)
    evaluate = stages["evaluate__mnist5k_mnistm__source_only__s0"]
    assert "selection.validator" not in evaluate.params  # a row without a series scores its checkpoint
    assert "selection.validator" in stages["evaluate__mnist5k_mnistm__cycada_feat__s0"].params
    train = stages["adapt_features__mnist5k_mnistm__feat__s0"]
    assert str(paths.series(registry.rows()["cycada_feat"].model.checkpoint(exp, 0))) in train.dir_outs


def test_rank_orders_a_sweep_by_the_validator_score_and_sets_the_oracle_beside_it():
    from pipeline_lib.rank import rank

    file = "reports/mnist5k_mnistm/metrics.json"
    records = [
        {"Experiment": "lr1", "params.yaml:cycada.lr": 1e-4, f"{file}:selected_by": "bnm",
         f"{file}:selected_score.cycada_feat": 0.5, f"{file}:target.cycada_feat": 60.0,
         f"{file}:target_oracle.cycada_feat": 62.0},
        {"Experiment": "lr3", "cycada.lr": 3e-4, "selected_by": "bnm", "selected_score.cycada_feat": 0.7,
         "target.cycada_feat": 55.0, "target_oracle.cycada_feat": 58.0},  # unprefixed where DVC had no clash
        {"Experiment": "none", "selected_score.cycada_feat": None},  # a run without a score is left out
        {"Experiment": "killed", "State": "Failed", "selected_score.cycada_feat": 0.9},  # and one that did not end
    ]
    table = rank(records, "mnist5k_mnistm", "cycada_feat", ["cycada.lr"])
    assert table["run"].tolist() == ["lr3", "lr1"]  # by the validator, although lr1 has the better target
    assert table["rank by target"].tolist() == [2, 1]
    assert table["cycada.lr"].tolist() == [3e-4, 1e-4]
    assert table["oracle-best (reads labels)"].tolist() == [58.0, 62.0]
    with pytest.raises(Exception, match="no run has a validator score"):
        rank(records[2:], "mnist5k_mnistm", "cycada_feat")  # neither of the last two counts


def test_a_row_and_its_training_stage_must_agree_on_keeping_a_series():
    params = load_params("params.yaml")
    exp = registry.Experiment(params, "mnist5k_mnistm")
    specs = registry.method_stages(exp)
    registry.check_series(exp, specs)  # the project's declarations agree
    dropped = [s if s.name != "adapt_features__mnist5k_mnistm__feat__s0" else
               registry.StageSpec(**{**s.__dict__, "series": ""}) for s in specs]
    with pytest.raises(RuntimeError, match="row cycada_feat: Model\\(series=True\\)"):
        registry.check_series(exp, dropped)
