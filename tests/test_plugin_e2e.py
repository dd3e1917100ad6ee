"""A method that lives outside ``pipeline_lib`` (``tests/plugins``, listed in params.yaml's ``method_paths``) runs
through the tiny DAG and the report under both runners, with no project module naming it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
import yaml

from pipeline_helpers import ROOT, copy_project, env_for, record_modules, run, snakemake_plan

pytestmark = pytest.mark.slow

REPORT = "reports/mnist5k_toy.csv"
PLUGIN = {"profile": "tiny", "seeds": [0], "method_paths": ["tests/plugins"],
          "experiments": {"mnist5k_toy": {"source": "mnist5k", "target": "mnistm", "backbone": "lenet_rgb",
                                          "methods": ["source_only", "toy"]}},
          "dvc_experiments": ["mnist5k_toy"]}
PLUGIN_FILES = {"tests/plugins/methods/toy.py", "tests/plugins/methods/toy_params.py",
                "tests/plugins/methods/toy_spec.py", "tests/plugins/stages/toy_scale.py"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """One copy built by Snakemake, another by `dvc repro` at the same time."""
    by_dvc = copy_project(tmp_path_factory.mktemp("plugin_dvc"), **PLUGIN)
    log = tmp_path_factory.mktemp("plugin_dvc_log") / "dvc_repro.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["dvc", "repro"], cwd=by_dvc, env=env_for(by_dvc), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        by_snakemake = copy_project(tmp_path_factory.mktemp("plugin_snake"), **PLUGIN)
        run(["snakemake", "--cores", "1", REPORT], by_snakemake, env=record_modules(by_snakemake))
        proc.wait(timeout=900)
        assert proc.returncode == 0, f"dvc repro failed:\n{log.read_text()[-3000:]}"
        yield by_snakemake, by_dvc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_plugin_row_reaches_the_report_under_both_runners(runs):
    tables = [pd.read_csv(project / REPORT) for project in runs]
    for table in tables:
        assert list(table["method"]) == ["source only", "toy plugin (scaled logits)"]
        source_only, toy = table.to_dict("records")
        assert toy["target_acc"] == source_only["target_acc"]  # scaled logits: the same predictions
        assert toy["settings"] == "logits scaled by 2"
        assert toy["model_selection"] == "no selection: one closed-form step"
    assert tables[0].drop(columns="train_seconds_per_seed").equals(tables[1].drop(columns="train_seconds_per_seed"))


def test_the_plugin_stage_depends_on_its_own_files_and_no_project_module_names_it(runs):
    by_snakemake, by_dvc = runs
    stages = yaml.safe_load((by_dvc / "dvc.yaml").read_text())["stages"]
    toy = stages["toy_scale__mnist5k_toy__s0"]
    assert toy["cmd"] == "python3 -m stages.toy_scale --experiment mnist5k_toy --seed 0"
    assert PLUGIN_FILES <= set(toy["deps"])
    recorded = [json.loads(p.read_text()) for p in (by_snakemake / ".modules").glob("*.json")]
    loaded = next(r["modules"] for r in recorded if r["cmd"] == toy["cmd"])
    assert {"pipeline_lib.methods.toy", "pipeline_lib.methods.toy_spec", "pipeline_lib.methods.toy_params"} <= \
        set(loaded)  # found as the project's own modules are (the stage itself runs as __main__)
    for folder in ("pipeline_lib", "stages"):
        assert not [p for p in (ROOT / folder).rglob("*.py") if "toy" in p.read_text()]


def test_editing_the_plugins_params_module_reruns_its_stage_and_what_follows(runs):
    project = runs[0]
    params_module = project / "tests/plugins/methods/toy_params.py"
    text = params_module.read_text()
    try:
        params_module.write_text(text.replace("Field(2.0, gt=0)", "Field(3.0, gt=0)"))
        assert set(snakemake_plan(project, REPORT)) == {"toy_scale__mnist5k_toy__s0", "evaluate__mnist5k_toy__toy__s0",
                                                        "report__mnist5k_toy"}
    finally:
        params_module.write_text(text)


def test_a_method_path_without_a_methods_folder_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text() + "\nmethod_paths: [nowhere]\n")
    proc = run(["python", "-m", "pipeline_lib.dag", "--check"], tmp_path, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: params.yaml: method_paths: 'nowhere' has no methods/ folder (a method's <name>_spec.py, "
        "<name>_params.py and code): fix the path or remove it")
