"""The whole DAG on the tiny profile, through both runners, plus the team-sharing flow.

One project copy is built by Snakemake (module fixture); the tests then check what a
user relies on: the report, no work on a second run, exactly the downstream stages
after a param change, the same metrics from `dvc repro` in another copy, and that a
teammate who only ran `make pull` has nothing to recompute.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
import yaml

from pipeline_lib import registry
from pipeline_lib.config import load_params
from pipeline_lib.history import read_history
from pipeline_helpers import (BIN, ROOT, copy_project, downstream, env_for, record_modules, run, snakemake_plan,
                              stages_using, undeclared_modules)
from remote_servers import Remote, folder_objects, s3_remote, ssh_remote  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

REPORT = "reports/mnist5k_mnistm.csv"
TINY = {"profile": "tiny", "seeds": [0]}  # multi-seed means are tested in test_report


def _jobs(stage: str, names: tuple[str, ...]) -> set[str]:
    """Snakemake job names of ``stage`` for each variant or method in ``names`` and each seed."""
    return {f"{stage}__mnist5k_mnistm__{n}__s{s}" for n in names for s in TINY["seeds"]}


def _selects(*rows: str) -> set[str]:
    """The ``select`` jobs of report rows (one per row, all seeds)."""
    return {f"select__mnist5k_mnistm__{r}" for r in rows}


#: the rows of the copy `dvc repro` builds, what the DVC tests below read: ADDA's discriminator and translate's
#: content check (CyCADA pixel+feat), GAM's params module, the I2IAdapt set `dvc exp run` changes, checkpoint
#: selection and the upper bound: 20 stages of the 44
DVC_ROWS = ["source_only", "cycada_pixel_feat", "gam_noreg", "i2i_z_idy_trc", "oracle"]


@pytest.fixture(scope="module")
def dvc_started(tmp_path_factory) -> Iterator[tuple[Path, subprocess.Popen, Path]]:
    """A second copy, being built by `dvc repro` in the background: DVC runs one stage at a time, so its run
    overlaps the Snakemake build and the tests after it. It builds :data:`DVC_ROWS`: the stages are the same code
    under both runners, and the full DAG's equality is checked at plan level (test_dag)."""
    experiments = yaml.safe_load((ROOT / "params.yaml").read_text())["experiments"]
    experiments["mnist5k_mnistm"] = {**experiments["mnist5k_mnistm"], "methods": DVC_ROWS}
    project = copy_project(tmp_path_factory.mktemp("dvc"), **TINY, experiments=experiments)
    log = tmp_path_factory.mktemp("dvc_log") / "dvc_repro.log"  # a file, not a pipe: nobody reads it meanwhile
    with open(log, "w") as out:
        proc = subprocess.Popen(["dvc", "repro"], cwd=project, env=env_for(project), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    yield project, proc, log
    if proc.poll() is None:  # its tests were not selected: stop DVC and the stage it runs
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def built(tmp_path_factory, dvc_started) -> Path:
    project = copy_project(tmp_path_factory.mktemp("snake"), **TINY)
    run(["snakemake", "--cores", "2", REPORT], project, env=record_modules(project))
    return project


def _metrics(project: Path) -> dict[str, dict]:
    """Per evaluation's metrics file: the seed and both domains' confusion matrices."""
    out = {}
    for path in sorted(project.glob("metrics/**/*.json")):
        if path.parent.name == "content_check" or path.name == "selection.json":  # translate's, select's records
            continue
        m = json.loads(path.read_text())
        out[str(path.relative_to(project))] = {"seed": m["seed"], "target": m["target"], "source": m["source"]}
    return out


def _methods(project: Path) -> tuple[str, ...]:
    """The experiment's rows in the project's (tiny) params, from the registry: a new method's rows are built and
    checked too (every row of the track, I2IAdapt's tiny subset of its lambda sets)."""
    return registry.Experiment(load_params(project / "params.yaml"), "mnist5k_mnistm").rows


def test_report_has_a_row_per_method_with_seeds_profile_and_plots(built):
    METHODS = _methods(built)
    table = pd.read_csv(built / REPORT)
    assert list(table["method"]) == [registry.row(m).label for m in METHODS]
    assert METHODS[0] == "source_only" and METHODS[-1] == "oracle" and len(METHODS) >= 13
    assert {"i2i_z_idy_trc", "i2i_all"} <= set(METHODS) and "i2i_none" not in METHODS  # the tiny profile's sets
    assert set(table["profile"]) == {"tiny"} and set(table["n_seeds"]) == {1}
    assert set(table["seeds"].astype(str)) == {"0"}
    assert list(table["uses_target_labels"]) == [m == "oracle" for m in METHODS]
    calibrated = table[table["method"].str.contains("calibrator")]
    assert calibrated["calibrator_share_pct"].between(0.1, 100).all()  # LeNet 657k vs calibrator at ngf 4
    assert table["calibrator_share_pct"].isna().sum() == len(table) - 2
    for col in ("target_mean", "source_mean"):
        assert table[col].between(0, 100).all()
    # the source-only model is trained on mnist5k, so it scores better there than the oracle's target
    metrics = _metrics(built)
    assert len(metrics) == len(METHODS)
    src = metrics["metrics/mnist5k_mnistm/source_only/seed0.json"]
    assert src["source"]["domain"] == "mnist5k" and src["target"]["domain"] == "mnistm"
    assert sum(map(sum, src["target"]["confusion"])) == 1000  # mnistm test split
    pngs = [f"confusion/{m}.png" for m in METHODS] + ["training_curves.png", "translation_seed0.png", "tradeoff.png",
                                                       "predictions.png",
                                                       "fourier_raw_seed0.png", "fourier_cycada_seed0.png",
                                                       "i2i_translation_all_seed0.png", "i2i_embedding_seed0.png"]
    for png in pngs:
        assert (built / "reports/mnist5k_mnistm" / png).read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((built / "data/translated/mnist5k_mnistm/seed0/manifest.json").read_text())
    assert manifest["count"] == 4000 and manifest["source"] == "mnist5k"
    check = json.loads((built / "metrics/mnist5k_mnistm/content_check/seed0.json").read_text())
    assert (check["metric"], check["frames"], check["seed"]) == ("accuracy", 64, 0)
    assert 0 < check["source"] <= 1 and 0 <= check["translated"] <= 1
    assert check["flagged"] == (check["translated"] < 2 / 3 * check["source"])
    pixel = table.set_index("method").loc[registry.row("cycada_pixel").label]
    assert pixel["content_check"] == (f"source model on source {100 * check['source']:.1f} -> translated "
                                      f"{100 * check['translated']:.1f} (accuracy, first 64 frames)")
    assert table["content_check"].notna().sum() == 1  # the pixel-only row carries it


def test_second_run_plans_no_work(built):
    assert snakemake_plan(built, REPORT) == {}


def _plan_after(built: Path, section: str, key: str, value) -> set[str]:
    params_file = built / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    node = params
    for part in section.split("."):
        node = node[part]
    node[key] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return set(snakemake_plan(built, REPORT))
    finally:
        params_file.write_text(original)


def test_every_stage_declares_every_project_module_it_loaded(built):
    """Code deps come from the import closure: each stage kind ran once above and recorded sys.modules."""
    assert undeclared_modules(built) == {}


DISCRIMINATORS = "pipeline_lib/models/discriminators.py"


def _edit_code(project: Path, rel: str) -> tuple[str, os.stat_result]:
    path = project / rel
    original, stat = path.read_text(), path.stat()
    path.write_text(original + "\n# an edit\n")
    return original, stat


@contextlib.contextmanager
def _edited(project: Path, rel: str) -> Iterator[None]:
    """``rel`` edited for the block, then put back as it was, mtime included (Snakemake judges by mtime)."""
    original, stat = _edit_code(project, rel)
    try:
        yield
    finally:
        (project / rel).write_text(original)
        os.utime(project / rel, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_editing_the_discriminators_reruns_exactly_the_stages_that_use_them(built):
    users = stages_using(built, DISCRIMINATORS)
    assert _jobs("adapt_features", ("feat", "pixel_feat", "feat_reg")) <= users  # ADDA's discriminator
    assert not any(u.startswith(("train_supervised", "evaluate", "translate", "prepare")) for u in users)
    with _edited(built, DISCRIMINATORS):
        assert set(snakemake_plan(built, REPORT)) == downstream(built, users)
    assert snakemake_plan(built, REPORT) == {}


GAM_PARAMS = "pipeline_lib/methods/gam_params.py"
TRAINING = "pipeline_lib/training.py"


def test_editing_a_methods_params_module_reruns_exactly_its_stages(built):
    """A stage loads a method's params module only where it reads that section: GAM's module feeds GAM's stages,
    the ADDA + regulariser stage that reads gam.adda_weight_reg and the report (it rebuilds every row's stages for
    their curves), nothing of CyCADA's, the calibrator's or I2IAdapt's, nor data preparation."""
    users = stages_using(built, GAM_PARAMS)
    assert _jobs("match_activations", ("full", "noreg")) <= users
    assert {u.split("__")[0] for u in users} <= {"gaussian_match", "match_activations", "adapt_features", "report"}
    assert {u for u in users if u.startswith("adapt_features")} == _jobs("adapt_features", ("feat_reg",))
    with _edited(built, GAM_PARAMS):
        assert set(snakemake_plan(built, REPORT)) == downstream(built, users)
    assert snakemake_plan(built, REPORT) == {}


def test_editing_the_training_module_reruns_no_data_preparation(built):
    users = stages_using(built, TRAINING)
    assert not any(u.startswith(("prepare__", "evaluate__", "report__")) for u in users)
    with _edited(built, TRAINING):
        plan = set(snakemake_plan(built, REPORT))
        assert plan == downstream(built, users) and not any(p.startswith("prepare__") for p in plan)
    assert snakemake_plan(built, REPORT) == {}


def test_unrelated_params_rerun_nothing(built):
    """Another dataset's root, or a new folder domain, is nothing the digits stages read."""
    raw = yaml.safe_load((built / "params.yaml").read_text())
    assert _plan_after(built, "data", "roots", {**raw["data"]["roots"], "cityscapes": "/elsewhere"}) == set()
    mine = {"mine": {"root": "/data/mine", "classes": ["a", "b"]}}
    assert _plan_after(built, "data", "folders", {**raw["data"]["folders"], **mine}) == set()


def test_changing_a_param_reruns_exactly_the_downstream_stages(built):
    everything = set(snakemake_plan(built, REPORT, force=True))
    # the supervised models feed every method but I2IAdapt (it trains its own from scratch, with its augmentation):
    # all but the two prepare stages and I2IAdapt's rerun
    assert _plan_after(built, "train_supervised", "lr", 5e-4) == {
        s for s in everything
        if not s.startswith(("prepare__", "train_i2i__", "i2i_embedding__")) and "__i2i_" not in s}
    assert snakemake_plan(built, REPORT) == {}


def test_changing_a_feature_adaptation_param_reruns_only_that_stage_and_what_follows(built):
    plan = _plan_after(built, "cycada.adapt_features", "gate_accuracy", 0.55)
    # ADDA's three uses: CyCADA feat only, pixel+feat, and GAM's "ADDA + weight regulariser"
    expected = _jobs("adapt_features", ("feat", "pixel_feat", "feat_reg"))
    expected |= _jobs("evaluate", ("cycada_feat", "cycada_pixel_feat", "adda_reg"))
    expected |= _selects("cycada_feat", "cycada_pixel_feat", "adda_reg")  # each kept a new checkpoint series
    assert plan == expected | {"report__mnist5k_mnistm"}
    # GAM's own section reruns GAM's adversarial stages (not the Gaussian matching) and what follows
    plan = _plan_after(built, "gam.match_activations", "lambda_gan", 0.5)
    expected = _jobs("match_activations", ("full", "noreg")) | _jobs("evaluate", ("gam", "gam_noreg"))
    assert plan == expected | _selects("gam", "gam_noreg") | {"report__mnist5k_mnistm"}


def test_selection_params_rerun_exactly_the_stages_that_read_them(built):
    selected = ("cycada_pixel", "cycada_feat", "cycada_pixel_feat", "adda_reg", "gam_noreg", "gam", "calibrator",
                "cycada_calibrator", "i2i_z_idy_trc", "i2i_all")
    # another validator: the selected rows' evaluations and the report; no training, no select
    assert _plan_after(built, "selection", "validator", "im") == _jobs("evaluate", selected) | {
        "report__mnist5k_mnistm"}
    # the validators' samples: select, and what reads its choice
    assert _plan_after(built, "selection", "target_samples", 500) == _selects(*selected) | _jobs(
        "evaluate", selected) | {"report__mnist5k_mnistm"}
    assert snakemake_plan(built, REPORT) == {}


def test_an_i2i_lambda_set_reruns_only_its_row_and_the_embedding_it_feeds(built):
    plan = _plan_after(built, "i2i.sets", "all", ["c", "z", "tr", "id_x", "id_y", "trc"])
    assert plan == _jobs("train_i2i", ("all",)) | _jobs("evaluate", ("i2i_all",)) | _selects("i2i_all") | {
        "i2i_embedding__mnist5k_mnistm__s0", "report__mnist5k_mnistm"}
    plan = _plan_after(built, "i2i", "lr", 1e-4)  # a shared setting: every set
    assert plan == _jobs("train_i2i", ("all", "z_idy_trc")) | _jobs("evaluate", ("i2i_all", "i2i_z_idy_trc")) | \
        _selects("i2i_all", "i2i_z_idy_trc") | {"i2i_embedding__mnist5k_mnistm__s0", "report__mnist5k_mnistm"}
    history = read_history(built / "models/i2i/mnist5k_mnistm/seed0/all.history.csv")
    for col in ("loss_c", "loss_z", "loss_tr", "loss_id_x", "loss_id_y", "loss_cyc", "loss_trc", "w_d_z", "w_d_x",
                "target_metric"):
        assert col in history, col
    assert "loss_tr" not in read_history(built / "models/i2i/mnist5k_mnistm/seed0/z_idy_trc.history.csv")


def test_calibrator_reuses_cycada_artifacts_and_exports_one_checked_file(built):
    plan = _plan_after(built, "calibrator", "linf", 0.25)
    expected = _jobs("train_calibrator", ("raw", "cycada")) | _jobs("export", ("raw", "cycada"))
    expected |= _jobs("evaluate", ("calibrator", "cycada_calibrator")) | _selects("calibrator", "cycada_calibrator")
    assert plan == expected | {"report__mnist5k_mnistm"}  # CycleGAN, translation, pixel-only model: reused
    deployed = json.loads((built / "models/calibrator/mnist5k_mnistm/seed0/cycada.deploy.json").read_text())
    assert deployed["max_abs_difference"] <= 1e-4 and deployed["input_shape"] == [8, 3, 32, 32]
    meta = run([sys.executable, "-c", "import torch; m = torch.jit.load('models/calibrator/mnist5k_mnistm/seed0/"
                "cycada.torchscript.pt'); print(tuple(m(torch.zeros(8, 3, 32, 32)).shape))"], built).stdout
    assert meta.strip().endswith("(8, 10)")


def _report_data(html: str, name: str) -> dict:
    """One of the JSON objects Snakemake's HTML report inlines as ``<script id="<name>"> var <name> = {...};``
    (results, categories)."""
    found = re.search(rf'<script id="{name}">\s*var {name} = (.*);$', html, re.M)
    assert found, name
    return json.loads(found.group(1))


def test_html_report_is_self_contained(built):
    run(["snakemake", "--cores", "1", "--report", "reports/report.html", REPORT], built)
    html = (built / "reports/report.html").read_text(errors="replace")
    for item in ("mnist5k_mnistm", "oracle.png", "predictions.png", "translation_seed0.png", "training_curves.png",
                 "fourier_raw_seed0.png"):
        assert item in html, item
    # a document: every result filed under its experiment (or the domains) and a method, with a caption
    results, categories = _report_data(html, "results"), _report_data(html, "categories")
    assert set(categories) == {"mnist5k_mnistm", "Domains"} and set(categories["Domains"]) == {"mnist5k", "mnistm"}
    filed = {path: (category, sub) for category, subs in categories.items() for sub, paths in subs.items()
             for path in paths}
    assert set(filed) == set(results) and "Other" not in {sub for _, sub in filed.values()}
    assert {"All methods", "CyCADA", "GAM", "Calibrator", "I2IAdapt"} <= set(categories["mnist5k_mnistm"])
    confusion = {p for p in results if "/confusion/" in p}
    assert len(confusion) == len(_methods(built)) and REPORT in results
    for path, result in results.items():
        assert "<p>" in result["caption"] and "system-message" not in result["caption"], path
        assert result["labels"] and all(result["labels"].values()), path
        if filed[path][0] == "mnist5k_mnistm":
            assert "mnist5k_mnistm" in result["caption"], path  # the caption names its experiment
    for path in confusion:  # a folder shown file by file, each labelled with its row
        assert results[path]["labels"]["method"] == registry.row(Path(path).stem).label
    by_sub: dict[tuple[str, str], list[dict]] = {}
    for path, where in filed.items():
        by_sub.setdefault(where, []).append(results[path]["labels"])
    for where, labels in by_sub.items():  # the report lists a subcategory by its labels: the same keys, each once
        assert len({tuple(x) for x in labels}) == 1 and len({tuple(x.values()) for x in labels}) == len(labels)
    # captions are read by the report only: editing one reruns nothing
    caption = built / "reports/captions/confusion.rst"
    original = caption.read_text()
    caption.write_text(original + "\nEdited.\n")
    try:
        assert snakemake_plan(built, REPORT) == {}
    finally:
        caption.write_text(original)


@pytest.fixture(scope="module")
def dvc_built(dvc_started) -> tuple[Path, str]:
    """The second copy once `dvc repro` has finished, and what it printed."""
    project, proc, log = dvc_started
    proc.wait(timeout=1800)
    out = log.read_text()
    assert proc.returncode == 0, f"dvc repro failed ({proc.returncode}):\n{out[-3000:]}"
    return project, out


def test_dvc_repro_runs_the_same_dag_to_the_same_metrics(built, dvc_built):
    project, out = dvc_built
    assert "Running stage 'report__mnist5k_mnistm'" in out
    # same seed -> same numbers, for each row both built
    assert _methods(project) == tuple(DVC_ROWS) and len(_metrics(built)) == len(_methods(built))
    assert _metrics(project) == {k: v for k, v in _metrics(built).items() if k.split("/")[2] in DVC_ROWS}
    again = run(["dvc", "repro"], project).stdout
    assert "Running stage" not in again
    assert run(["dvc", "status", "--json"], project).stdout.strip() == "{}"


def _dvc_json(project: Path, *args: str) -> dict:
    return json.loads(run(["dvc", *args, "--json"], project).stdout)


def test_dvc_metrics_show_every_evaluation_per_method_and_seed_and_the_report(dvc_built):
    project, _ = dvc_built
    shown = _dvc_json(project, "metrics", "show")[""]["data"]  # "": the workspace
    rows = [m for m in _methods(project) if registry.rows()[m].model is not None]
    for method in rows:
        metrics = shown[f"metrics/mnist5k_mnistm/{method}/seed0.json"]["data"]
        assert (metrics["method"], metrics["seed"]) == (method, 0)
        assert 0 <= metrics["target"]["accuracy"] <= 1 and 0 <= metrics["source"]["accuracy"] <= 1
    check = shown["metrics/mnist5k_mnistm/content_check/seed0.json"]["data"]  # translate's content check
    assert check["frames"] == 64 and 0 <= check["translated"] <= 1
    summary = shown["reports/mnist5k_mnistm/metrics.json"]["data"]
    assert set(summary) == {"metric", "profile", "target", "source", "n_seeds",  # no std with one seed
                            "selected_by", "selected_score", "target_last", "target_oracle"}  # checkpoint selection
    assert summary["selected_by"] == "bnm" and set(summary["target_last"]) < set(summary["target"])
    table = pd.read_csv(project / REPORT)
    assert summary["target"] == dict(zip(rows, table.loc[table["n_seeds"] > 0, "target_mean"]))  # DVC sorts keys
    assert summary["source"] == dict(zip(rows, table.loc[table["n_seeds"] > 0, "source_mean"]))
    assert "source_only" in run(["dvc", "metrics", "show"], project).stdout  # the table a user reads


def test_dvc_plots_show_draws_every_history_and_confusion_matrix(dvc_built, tmp_path):
    project, _ = dvc_built
    shown = _dvc_json(project, "plots", "show")
    assert not shown.get("errors"), shown.get("errors")
    histories = {o for s in yaml.safe_load((project / "dvc.yaml").read_text())["stages"].values()
                 for o in map(lambda out: next(iter(out)), s["outs"]) if o.endswith(".history.csv")}
    assert histories and histories <= set(shown["data"])
    for path in histories:  # one line per loss term against epoch, every series a loss
        (plot,) = shown["data"][path]
        values = plot["content"]["data"]["values"]
        assert plot["type"] == "vega" and values and {v["epoch"] for v in values} and \
            any(v["series"].startswith("loss") for v in values), path
        assert plot["content"]["transform"][0]["filter"].startswith("indexof(datum.series, 'loss')")
    (confusion,) = shown["data"]["reports/mnist5k_mnistm/confusion/source_only.json"]
    counts = confusion["content"]["data"]["values"]
    assert len(counts) == 100 and sum(int(v["count"]) for v in counts) > 0  # 10 x 10 classes
    assert confusion["content"]["title"]["text"] == "mnist5k_mnistm: source only on mnistm test (seeds summed)"
    assert shown["data"]["reports/mnist5k_mnistm/tradeoff.png"][0]["type"] == "image"
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], project)
    html = (tmp_path / "plots/index.html").read_text()
    assert "vega" in html and "training losses per epoch" in html and "tradeoff.png" in html


def test_dvc_exp_run_reruns_only_what_a_param_feeds_and_exp_show_and_metrics_diff_list_it(dvc_built):
    """The README's flow (`dvc exp run -S`, `dvc exp show`, `dvc metrics diff`) on the cheapest experiment: I2IAdapt's
    best digits line without its translated-source term (one training stage, its evaluation and the report; the
    README's ADDA learning rate reruns seven stages here, measured by hand)."""
    project, _ = dvc_built
    run("git add -A && git commit -qm 'tiny run'", project)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    reading = {n for n, s in stages.items() if "i2i.sets.z_idy_trc" in s["params"]}
    assert reading == {"train_i2i__mnist5k_mnistm__z_idy_trc__s0"}
    out = run(["dvc", "exp", "run", "-n", "no-trc", "-S", "i2i.sets.z_idy_trc=[c,z,id_y]"], project).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == downstream(project, reading) == reading | {"select__mnist5k_mnistm__i2i_z_idy_trc",
                                                             "evaluate__mnist5k_mnistm__i2i_z_idy_trc__s0",
                                                             "report__mnist5k_mnistm"}
    # the sweep ranked by the validator, the oracle beside it (docs/selection.md), read through dvc.api.exp_show
    ranked = run([sys.executable, "-m", "pipeline_lib.rank", "--experiment", "mnist5k_mnistm", "--row",
                  "i2i_z_idy_trc", "--param", "i2i.sets.z_idy_trc"], project).stdout
    assert "no-trc" in ranked and "workspace" in ranked and "bnm" in ranked and "oracle-best" in ranked
    (exp,) = [e for baseline in _dvc_json(project, "exp", "show") for e in baseline.get("experiments") or []
              if e.get("name") == "no-trc"]
    (rev,) = exp["revs"]
    data = rev["data"]
    assert data["params"]["params.yaml"]["data"]["i2i"]["sets"]["z_idy_trc"] == ["c", "z", "id_y"]
    assert "source_only" in data["metrics"]["reports/mnist5k_mnistm/metrics.json"]["data"]["target"]
    run("git add -A && git commit -qm 'no trc'", project)  # the experiment's results, kept in the workspace
    diff = _dvc_json(project, "metrics", "diff", "HEAD~1", "HEAD")
    evaluated = {"metrics/mnist5k_mnistm/i2i_z_idy_trc/seed0.json"}
    assert evaluated <= set(diff) <= evaluated | {"reports/mnist5k_mnistm/metrics.json"}  # no other row moved


def test_dvc_reruns_exactly_what_changed(dvc_built):
    project, _ = dvc_built
    # an unrelated params key changes nothing; a code edit marks exactly the stages that import that file
    params = project / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["data"]["roots"]["cityscapes"] = "/elsewhere"
    raw["data"]["folders"].update({"mine": {"root": "/data/mine", "classes": ["a", "b"]}})
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    run([sys.executable, "-m", "pipeline_lib.dag"], project)
    assert run(["dvc", "status", "--json"], project).stdout.strip() == "{}"
    _edit_code(project, DISCRIMINATORS)
    changed = json.loads(run(["dvc", "status", "--json"], project).stdout)
    assert set(changed) == stages_using(project, DISCRIMINATORS)
    _edit_code(project, GAM_PARAMS)  # a method's params module: its own stages only, no preparation
    changed = json.loads(run(["dvc", "status", "--json"], project).stdout)
    assert set(changed) == stages_using(project, DISCRIMINATORS) | stages_using(project, GAM_PARAMS)
    assert not any(name.startswith("prepare__") for name in changed)


@pytest.fixture(params=["folder", "s3", "ssh"])
def dvc_remote(request, tmp_path) -> Remote:
    """The team's remote: the configured folder remote `local`, or a real S3 or SSH server on loopback (its test
    is skipped, with the reason, where the server cannot start)."""
    if request.param == "folder":
        return Remote("local", str(tmp_path / "remote"), objects=lambda: folder_objects(tmp_path / "remote"))
    return request.getfixturevalue(f"{request.param}_remote")


def test_share_then_pull_in_a_fresh_clone_plans_nothing(built, dvc_remote, tmp_path):
    """`make share` then `make pull` in a clone, against each kind of remote. All variants share the `built`
    project: each makes its remote the default in `.dvc/config.local`, and dvc.lock is committed once (the later
    variants find it unchanged)."""
    venv = Path(BIN).parent
    make = ["make", f"VENV={venv}", "-o", f"{venv}/.installed"]
    dvc_remote.configure(built)
    start = time.monotonic()
    run([*make, "share"], built)
    shared = time.monotonic() - start
    assert snakemake_plan(built, REPORT) == {}  # dvc commit relinked the outputs; make record put their times back
    run("git diff --cached --quiet -- dvc.lock || git commit -qm 'Record tiny run' dvc.lock", built)
    assert run(["git", "status", "--porcelain", "dvc.lock"], built).stdout == ""
    cached = {p for p in folder_objects(built / ".dvc/cache") if p.startswith("files/")}  # DVC 3's objects
    assert cached and dvc_remote.objects() == cached, "dvc push stored other objects than the cache holds"

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built), str(clone)], tmp_path)
    dvc_remote.configure(clone)
    start = time.monotonic()
    run([*make, "pull"], clone)
    print(f"{dvc_remote.name}: make share {shared:.1f} s, make pull {time.monotonic() - start:.1f} s")
    assert (clone / REPORT).read_text() == (built / REPORT).read_text()
    assert snakemake_plan(clone, REPORT) == {}
    assert run(["dvc", "status", "--json"], clone).stdout.strip() == "{}"


def test_missing_real_data_fails_at_once_with_the_fix_and_no_artifact(built):
    # ask for MNIST's prepared domain itself: with the whole report, Snakemake may try USPS first
    proc = run(["snakemake", "--cores", "1", "data/domains/mnist.npz"], built, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "data.roots.mnist" in errors[0] and "data.download: true" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (built / "data/domains/mnist.npz").exists() and not (built / "logs/prepare__mnist.log").exists()


def test_stage_cli_errors_are_one_line_with_exit_2(built):
    proc = run([sys.executable, "-m", "stages.prepare", "--domain", "mnist_m"], built, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: unknown domain 'mnist_m' (known: mnist5k, syndigits, mnistm, optdigits, mnist, usps, svhn, "
        "scenes_game, scenes_photo, gta5, cityscapes, synthia, amazon, webcam, dslr, mnist_odd")
    npz = built / "data/domains/mnistm.npz"
    saved = npz.read_bytes()
    try:
        npz.write_bytes(saved[:1000])
        proc = run([sys.executable, "-m", "stages.train_supervised", "--domain", "mnistm", "--backbone",
                    "lenet_rgb", "--seed", "5"], built, check=False)
        assert proc.returncode == 2 and "corrupt prepared domain" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not (built / "models/supervised/mnistm-lenet_rgb/seed5.pt").exists()
    finally:
        npz.write_bytes(saved)


def test_feature_map_regression_on_a_paired_experiment(built):
    """A shifted copy of MNIST-M, its baselines B0-B2, every regression variant LeNet has, the distortion
    column and the inversion grid; each stage declared the modules it loaded. Built in the `built` project, last
    of this module's tests: its MNIST-M and the MNIST-M model (H1 here, the oracle there) are reused."""
    project = built
    run(["snakemake", "--cores", "2", "reports/mnistm_ripple.csv"], project, env=record_modules(project))
    table = pd.read_csv(project / "reports/mnistm_ripple.csv")
    labels = [registry.row(m).label for m in ("source_only", "fmr_pool1", "fmr_pool2", "fmr_inc", "fmr_dec",
                                              "finetune", "oracle")]
    assert list(table["method"]) == labels
    regression = table[table["method"].str.startswith("FMR")]
    assert regression["settings"].str.startswith("regressed: conv").all()
    assert regression["shift"].eq("ripple, strength 1, seed 0").all() and regression["distortion_pct"].notna().all()
    assert table.loc[table["method"] == labels[-2], "uses_target_labels"].item()
    assert (project / "reports/mnistm_ripple/fmr_inversion_seed0.png").stat().st_size > 1000
    assert undeclared_modules(project) == {}
