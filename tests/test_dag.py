"""dvc.yaml and the Snakefile describe the same DAG."""

import yaml

from pipeline_helpers import ROOT, snakemake_plan
from pipeline_lib import paths
from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages, dvc_yaml_text


def test_committed_dvc_yaml_is_current():
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml_text(load_params(ROOT / "params.yaml")), \
        "dvc.yaml is stale: run `make dag` and commit it"


def test_snakemake_plans_the_dvc_stages_with_the_same_commands_inputs_and_outputs(source_copy):
    params = load_params(source_copy / "params.yaml")
    dvc = yaml.safe_load((source_copy / "dvc.yaml").read_text())["stages"]
    targets = [str(paths.report_csv(e)) for e in params.dvc_experiments]
    plan = snakemake_plan(source_copy, *targets, force=True)
    assert set(plan) == set(dvc)
    built = {s.name: s for s in build_stages(params, params.dvc_experiments)}
    for name, stage in dvc.items():
        assert plan[name]["rule"] == stage["cmd"].split()[2].removeprefix("stages."), name  # one rule per kind
        assert plan[name]["cmd"] == stage["cmd"], name
        outs = stage["outs"] + stage.get("metrics", [])  # a metrics file is an output DVC also reads as metrics
        assert sorted(plan[name]["outputs"]) == sorted(next(iter(o)) for o in outs), name
        assert all(o[next(iter(o))] == {"persist": True} for o in outs), name
        assert sorted(stage["deps"]) == sorted(built[name].dvc_deps), name
        # the same, but for a dataset folder: DVC hashes the folder, Snakemake reads its manifest
        assert sorted(plan[name]["inputs"]) == sorted(built[name].snakemake_inputs), name


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


def test_a_dataset_folder_is_prepares_dependency_under_both_runners(tiny_raw):
    """A folder (or real) domain's prepare depends on its dataset folder: in dvc.yaml the folder itself, under
    Snakemake its manifest. No other stage lists either (they read the index, which records the content hash)."""
    from pipeline_lib.config import parse_params

    folder = {"classes": ["road", "car", "sky"]}
    tiny_raw["data"]["folders"].update({"mine": {"root": "/data/mine", **folder},
                                        "theirs": {"root": "raw/theirs", **folder}})
    tiny_raw["experiments"]["own"] = {"source": "mine", "target": "theirs", "backbone": "street",
                                      "methods": ["source_only"]}
    tiny_raw["dvc_experiments"] = ["own"]
    params = parse_params(tiny_raw)
    stages = {s.name: s for s in build_stages(params, ("own",))}
    dvc = yaml.safe_load(dvc_yaml_text(params))["stages"]
    for name, root in (("mine", "/data/mine"), ("theirs", "raw/theirs")):
        prepare = stages[f"prepare__{name}"]
        assert root in dvc[f"prepare__{name}"]["deps"] and root not in prepare.snakemake_inputs
        assert f"data/manifests/{name}.json" in prepare.snakemake_inputs
        assert "pipeline_lib/domains/manifest.py" in prepare.deps  # prepare hashes the folder for its index
    others = [s for s in stages.values() if not s.name.startswith("prepare__")]
    assert others and not any(s.raw for s in others)
    assert not any(d.startswith(("/data/mine", "raw/theirs", "data/manifests")) for s in others for d in s.dvc_deps
                   + s.snakemake_inputs)
    embedded = build_stages(parse_params(tiny_raw), ("mnist5k_mnistm",))
    assert not any(s.raw for s in embedded)
    assert not any("manifest" in d for s in embedded for d in s.deps)  # the embedded domains hash nothing


def test_the_digit_folders_are_tracked_unless_torchvision_downloads_them(tiny_raw):
    from pipeline_lib.config import parse_params

    def raw(download: bool) -> tuple:
        tiny_raw["data"]["download"] = download
        stages = build_stages(parse_params(tiny_raw), ("mnist_usps",))
        return next(s for s in stages if s.name == "prepare__mnist").raw

    assert [r.root for r in raw(False)] == [tiny_raw["data"]["roots"]["mnist"]]
    assert raw(True) == ()
