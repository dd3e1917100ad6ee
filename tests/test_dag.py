"""dvc.yaml and the Snakefile describe the same DAG."""

import yaml

from pipeline_helpers import ROOT, snakemake_plan
from pipeline_lib import paths
from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages, dvc_yaml_text


def test_committed_dvc_yaml_is_current():
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml_text(load_params(ROOT / "params.yaml")), \
        "dvc.yaml is stale: run `make dag` and commit it"


def test_snakemake_plans_the_dvc_stages_with_the_same_commands_inputs_and_outputs():
    params = load_params(ROOT / "params.yaml")
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    targets = [str(paths.report_csv(e)) for e in params.dvc_experiments]
    plan = snakemake_plan(ROOT, *targets, force=True)
    assert set(plan) == set(dvc)
    for name, stage in dvc.items():
        assert plan[name]["rule"] == stage["cmd"].split()[2].removeprefix("stages."), name  # one rule per kind
        assert plan[name]["cmd"] == stage["cmd"], name
        outs = stage["outs"] + stage.get("metrics", [])  # a metrics file is an output DVC also reads as metrics
        assert sorted(plan[name]["outputs"]) == sorted(next(iter(o)) for o in outs), name
        assert all(o[next(iter(o))] == {"persist": True} for o in outs), name
        assert sorted(plan[name]["inputs"]) == sorted(stage["deps"]), name


def test_every_stage_lists_its_own_code_and_params():
    params = load_params(ROOT / "params.yaml")
    for stage in build_stages(params):
        script = "stages/" + stage.cmd.split()[2].removeprefix("stages.") + ".py"
        assert script in stage.deps, stage.name
        assert "pipeline_lib/config.py" in stage.deps and stage.params, stage.name


def test_domains_are_shared_between_experiments():
    params = load_params(ROOT / "params.yaml")
    names = [s.name for s in build_stages(params)]
    assert len(names) == len(set(names))
    assert names.count("prepare__mnist5k") == 1  # used by mnist5k_mnistm, syndigits_mnist5k, mnistm


def test_source_and_target_class_lists_are_checked_when_the_dag_is_built(tiny_raw):
    import pytest

    from pipeline_lib.config import parse_params
    from pipeline_lib.errors import PipelineError

    tiny_raw["data"]["folders"].update({"mine": {"root": "/data/mine", "classes": ["road", "car", "sky"]},
                                   "theirs": {"root": "/data/theirs", "classes": ["road", "sky", "car"]}})
    tiny_raw["experiments"]["own"] = {"source": "mine", "target": "theirs", "backbone": "street"}
    with pytest.raises(PipelineError, match="experiments.own.*different class lists") as err:
        build_stages(parse_params(tiny_raw))
    assert "\n" not in str(err.value)


def test_metrics_and_plots_are_declared_for_dvc():
    """Every evaluation's metrics file, each translation's content check and each report's summary are DVC
    metrics; every training history, each report's confusion folder and figures are DVC plots, with the project's
    templates."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    stages = dvc["stages"]
    metrics = {next(iter(m)) for s in stages.values() for m in s.get("metrics", [])}
    evaluations = [n for n in stages if n.startswith("evaluate__")]
    translations = [n for n in stages if n.startswith("translate__")]
    assert evaluations and translations
    assert metrics == ({str(paths.report_metrics(e)) for e in load_params(ROOT / "params.yaml").dvc_experiments}
                       | {next(iter(stages[n]["metrics"][0])) for n in evaluations + translations})
    assert all("content_check" in next(iter(stages[n]["metrics"][0])) for n in translations)
    plots = {next(iter(p)) if isinstance(p, dict) else p: p for p in dvc["plots"]}
    histories = {next(iter(o)) for s in stages.values() for o in s["outs"] if paths.is_history(next(iter(o)))}
    assert histories and histories <= set(plots)
    assert all(plots[h][h]["template"] == "losses" and plots[h][h]["x"] == "epoch" for h in histories)
    for name in ("losses", "confusion_counts"):
        template = ROOT / ".dvc/plots" / f"{name}.json"
        assert "<DVC_METRIC_DATA>" in template.read_text(), template
