"""The planning command: its jobs are the DAG's, its disk arithmetic and free-disk verdict, its one-line errors, and
the cost table's net sizes against the nets themselves."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from pipeline_lib import diskspace, plan
from pipeline_lib.config import parse_params
from pipeline_lib.costs import cost_table, job_cost
from pipeline_lib.dag import build_stages
from pipeline_lib.registry import Experiment


PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path, monkeypatch):
    """Run where no output exists (no job counts as done, no prepared index is read)."""
    monkeypatch.chdir(tmp_path)


def _free(monkeypatch, gb: float) -> None:
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(diskspace.shutil, "disk_usage", lambda path: usage(10**13, 0, int(gb * 1e9)))


def test_jobs_per_rule_are_the_dags(tiny_raw):
    params = parse_params(tiny_raw)
    totals = {t.rule: t.jobs for t in plan.plan(params, "scenes")}
    assert totals == collections.Counter(s.rule for s in build_stages(params, ("scenes",)))
    assert totals["translate"] == len(params.experiment_seeds("scenes"))


def test_fewer_rows_and_seeds_plan_fewer_jobs_and_hours():
    full, name = plan.planned_params(PARAMS, None, "reports/gta_cityscapes.csv", "paper", None, None)
    first, _ = plan.planned_params(PARAMS, None, "reports/gta_cityscapes.csv", "paper", ["source_only", "oracle"], [0])
    big, small = plan.plan(full, name), plan.plan(first, name)
    # source_only and oracle: no CycleGAN, translation or checkpoint series (no select)
    assert {t.rule for t in small} == {"prepare_index", "train_supervised", "evaluate", "report"}
    assert sum(t.seconds for t in small) < sum(t.seconds for t in big) / 10


def test_translated_set_disk_is_frames_times_pixels_times_four_bytes():
    assert diskspace.translated_set_bytes(10, 512, 1024) == 10 * 512 * 1024 * 4
    assert diskspace.translated_set_bytes(10, 32, 32, channels=3, label_bytes=8) == 10 * (3 * 32 * 32 + 8)
    params, name = plan.planned_params(PARAMS, None, "reports/gta_cityscapes.csv", "paper", None, [0])
    stage = next(s for s in build_stages(params, (name,)) if s.rule == "translate")
    cost = job_cost(params, Experiment(params, name), stage, 1, 1)
    frames = cost_table()["datasets"]["gta5"]["frames"] - params.prepare.gta5.test_frames
    assert cost.disk["translated"] == frames * 563 * 1024 * 4  # 1914x1052 scaled to width 1024: ~56 GB
    assert cost.gpu_bytes > 0 and cost.seconds > 0


@pytest.mark.parametrize("free_gb, verdict", [(10_000, "-> OK"), (5, "-> NOT ENOUGH")])
def test_free_disk_verdict(monkeypatch, capsys, free_gb, verdict):
    _free(monkeypatch, free_gb)
    assert plan.main(["reports/gta_cityscapes.csv", "--params", PARAMS, "--profile", "paper", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PROFILE: paper")
    assert f"free disk here: {free_gb:.1f} GB {verdict}" in out
    assert "GPU-hours" in out and "translate" in out


def test_demo_profile_on_real_data_is_warned_and_papers_printed(capsys):
    assert plan.main(["reports/gta_cityscapes.csv", "--params", PARAMS, "--profile", "demo", "--papers"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: cityscapes, gta5 under the 'demo' profile" in out
    assert "| source_only (source only) | 17.9 / 41.9 / 54.0" not in out  # demo's backbone is no paper's
    assert plan.main(["reports/gta_cityscapes.csv", "--params", PARAMS, "--profile", "paper", "--papers"]) == 0
    assert "| source_only (source only) | 21.7 / 47.4 / 62.5 | CyCADA Table 4" in capsys.readouterr().out


@pytest.mark.parametrize("argv, problem", [(["reports/nope.csv"], "reports/nope.csv: not the report of an experiment"),
                                           (["reports/gta_cityscapes.csv", "--rows", "bogus"], "unknown row 'bogus'")])
def test_cli_errors_are_one_line(capsys, argv, problem):
    assert plan.main([*argv, "--params", PARAMS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and problem in err and err.count("\n") == 1


def test_cost_table_net_sizes_match_the_nets():
    from pipeline_lib.models.calibrator import Calibrator
    from pipeline_lib.models.cyclegan import ImageDiscriminator, ResnetGenerator
    from pipeline_lib.models.segmenters import SEGMENTERS
    nets = {arch: SEGMENTERS[arch](19) for arch in SEGMENTERS}
    nets |= {"cyclegan_g": ResnetGenerator(3, 3, ngf=64, n_down=2, n_blocks=9),
             "cyclegan_d": ImageDiscriminator(3, ndf=64, n_layers=5), "calibrator": Calibrator(3, ngf=8, n_down=2,
                                                                                               n_blocks=2)}
    counted = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    assert counted == {name: m["params"] for name, m in cost_table()["models"].items()}
