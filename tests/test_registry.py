"""The method registry: every method declared once, and everything else iterating over it."""

from __future__ import annotations

import copy
import re

import pytest

from pipeline_lib import registry
from pipeline_lib.codedeps import ROOT
from pipeline_lib.config import parse_params, section_modules
from pipeline_lib.dag import build_stages
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Experiment


def test_rows_keep_their_order_with_the_upper_bounds_last():
    assert list(registry.rows()) == [
        "source_only", "cycada_pixel", "cycada_feat", "cycada_pixel_feat", "gam_gaussian", "adda_reg", "gam_noreg",
        "gam", "calibrator", "cycada_calibrator", "i2i_none", "i2i_z", "i2i_idy", "i2i_idy_trc", "i2i_z_idy",
        "i2i_z_idy_trc", "i2i_z_tr_idx_idy_trc", "i2i_all", "i2i_cyclegan", "fmr_pool1", "fmr_pool2", "fmr_pool3",
        "fmr_pool4", "fmr_pool5", "fmr_inc", "fmr_dec", "oracle", "label_bound", "finetune"]
    assert "label_bound" not in registry.default_rows("classification")
    assert registry.default_rows("segmentation")[-3:] == ("oracle", "label_bound", "finetune")


def test_a_method_may_report_a_subset_of_its_rows_by_default(tiny_raw):
    """I2IAdapt's ablation: the tiny profile reports two of its lambda sets unless asked for more."""
    exp = Experiment(parse_params(tiny_raw), "mnist_usps")
    assert [r for r in exp.rows if r.startswith("i2i_")] == ["i2i_z_idy_trc", "i2i_all"]
    tiny_raw["i2i"]["default_sets"] = None
    assert len([r for r in Experiment(parse_params(tiny_raw), "mnist_usps").rows if r.startswith("i2i_")]) == 9
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["source_only", "i2i_none"]  # asked for by name
    exp = Experiment(parse_params(tiny_raw), "mnist_usps")
    assert [s.name for s in registry.method_stages(exp)
            if s.module == "train_i2i"] == ["train_i2i__mnist_usps__none__s0"]


def test_a_section_may_run_its_rows_on_the_first_seeds_only(tiny_raw):
    """``i2i.n_seeds``: its rows' training and evaluate stages and the report's inputs cover the first n seeds."""
    tiny_raw["seeds"] = [0, 1, 2]
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["source_only", "i2i_none"]
    tiny_raw["i2i"]["n_seeds"] = 1
    params = parse_params(tiny_raw)
    exp = Experiment(params, "mnist_usps")
    assert exp.row_seeds("i2i_none") == (0,) and exp.row_seeds("source_only") == (0, 1, 2)
    names = [s.name for s in build_stages(params, ("mnist_usps",))]
    assert [n for n in names if n.startswith(("train_i2i", "evaluate__mnist_usps__i2i"))] == [
        "train_i2i__mnist_usps__none__s0", "evaluate__mnist_usps__i2i_none__s0"]
    assert len([n for n in names if n.startswith("evaluate__mnist_usps__source_only")]) == 3
    report = next(s for s in build_stages(params, ("mnist_usps",)) if s.name == "report__mnist_usps")
    assert "metrics/mnist_usps/i2i_none/seed1.json" not in report.deps and "i2i.n_seeds" in report.params


def test_i2i_from_the_source_model_depends_on_it_and_needs_its_inputs(tiny_raw):
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["i2i_none"]
    exp = Experiment(parse_params(tiny_raw), "mnist_usps")
    assert not any(s.module == "train_supervised" for s in registry.method_stages(exp))  # from scratch
    tiny_raw["i2i"]["init"] = "source_only"
    with pytest.raises(PipelineError,
                       match=r"i2i\.init: source_only starts from the lenet.* set i2i\.size: null and grey: "):
        build_stages(parse_params(tiny_raw))  # the paper's 32x32 inputs do not fit the 28x28 source model
    tiny_raw["i2i"]["size"], tiny_raw["i2i"]["grey"] = None, False
    exp = Experiment(parse_params(tiny_raw), "mnist_usps")
    stages = registry.method_stages(exp)
    train = next(s for s in stages if s.module == "train_i2i")
    assert str(exp.source_model(0)) in train.deps and "i2i.init" in train.params
    assert any(s.module == "train_supervised" for s in stages)


def test_every_params_section_is_found_and_validated(tiny_raw):
    assert {m.SECTION for m in section_modules()} == {"cycada", "gam", "calibrator", "i2i", "fmr"}
    for module in section_modules():  # a stage finds a section's module by its file name
        assert module.__name__ == f"pipeline_lib.methods.{module.SECTION}_params"
    params = parse_params(tiny_raw)
    assert params.section("gam", "lenet").match_activations.lr > 0
    bad = copy.deepcopy(tiny_raw)
    bad["gam"]["match_activations"]["lr"] = -1
    with pytest.raises(PipelineError, match=r"gam\.match_activations\.lr"):
        parse_params(bad)


@pytest.mark.parametrize("methods, message", [
    (["source_only", "cyclegan"], "unknown row 'cyclegan'"),
    (["label_bound"], "label_bound is for segmentation experiments"),
])
def test_an_experiment_cannot_have_rows_the_registry_lacks_or_its_track_cannot_run(tiny_raw, methods, message):
    tiny_raw["experiments"]["mnist_usps"]["methods"] = methods
    with pytest.raises(PipelineError, match=message):
        build_stages(parse_params(tiny_raw))


def test_gam_rows_need_the_layers_to_match(tiny_raw):
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["gam"]
    del tiny_raw["gam"]["layers"]["lenet"]
    with pytest.raises(PipelineError, match=r"GAM rows need gam\.layers\.lenet"):
        registry.check_params(parse_params(tiny_raw))


@pytest.mark.parametrize("key, section", [("gam_layers", "gam"), ("fmr_layers", "fmr")])
def test_layers_under_a_backbone_say_where_they_moved(tiny_raw, key, section):
    tiny_raw["backbones"]["lenet"][key] = ["fc1"]
    with pytest.raises(PipelineError, match=rf"backbones\.lenet: {key} moved to the method's own section: write it "
                                            rf"as {section}\.layers\.<backbone>"):
        parse_params(tiny_raw)


def test_a_row_that_builds_on_another_methods_stages_gets_them_and_their_curves(tiny_raw):
    """CycleGAN + calibrator alone still trains CyCADA's CycleGAN and pixel-only model, and the report
    draws that CycleGAN's curves (they were missing before the registry)."""
    tiny_raw["experiments"]["mnist_usps"]["methods"] = ["cycada_calibrator"]
    exp = Experiment(parse_params(tiny_raw), "mnist_usps")
    names = [s.name for s in registry.method_stages(exp)]
    assert {"train_cyclegan__mnist_usps__s0", "translate__mnist_usps__s0", "train_task__mnist_usps__s0",
            "train_calibrator__mnist_usps__cycada__s0"} <= set(names)
    panels = {c.panel for c in registry.curves(exp)}
    assert "CycleGAN cycle loss" in panels and any("calibrator" in p for p in panels)


def test_no_shared_module_names_a_method():
    """dag, paths, report, evaluate and config iterate over the registry: no row or section name in them."""
    names = set(registry.rows()) | {"cycada", "gam", "calibrator", "cyclegan", "translated", "adda"}
    for file in ("pipeline_lib/dag.py", "pipeline_lib/paths.py", "pipeline_lib/report.py", "stages/evaluate.py",
                 "pipeline_lib/config.py"):
        code = re.sub(r'"""(.|\n)*?"""|#.*', "", (ROOT / file).read_text())  # docstrings and comments may
        strings = set(re.findall(r'"([a-z_]+)"', code))
        assert not strings & names, (file, strings & names)


def test_paper_numbers_follow_the_backbone(tiny_params):
    values = lambda *pair: registry.paper_values("source_only", *pair)  # noqa: E731
    assert [p.table for p in values("mnist", "usps", "lenet")] == ["CyCADA Table 2", "GAM Table 1"]
    assert values("mnist", "usps", "drn26") == ()
    assert values("gta5", "cityscapes", "drn26")[0].miou == 21.7
    assert registry.paper_values("label_bound", "gta5", "cityscapes",
                                                    "lraspp_mobilenet_v3")[0].value.startswith("55")


# ---- feature-map regression: paired experiments only ----------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw["experiments"]["mnistm_ripple"].update(target="mnist5k"), "fmr_pool1 needs pairs"),
    (lambda raw: raw["data"]["shifted"]["mnistm_ripple"].update(base="mnist5k"), "fmr_pool1 needs pairs"),
    (lambda raw: raw["experiments"]["mnistm_ripple"]["methods"].append("fmr_pool3"), "fmr_pool3: fmr.layers.lenet_rgb"),
    (lambda raw: raw["fmr"]["layers"].pop("lenet_rgb"), "needs fmr.layers.lenet_rgb"),
    (lambda raw: raw["experiments"]["mnistm_ripple"]["methods"].remove("source_only"), "need source_only"),
    (lambda raw: raw["fmr"]["inversion"].update(variant="pool9"), "fmr.inversion.variant: 'pool9'"),
    (lambda raw: raw["experiments"]["mnistm_ripple"]["methods"].remove("fmr_dec") or
     raw["fmr"]["inversion"].update(variant="dec"), "dec is not among the experiment's rows"),
])
def test_regression_rows_need_pairs_layers_and_their_baseline(tiny_raw, edit, message):
    raw = copy.deepcopy(tiny_raw)
    raw["experiments"]["mnistm_ripple"] = dict(raw["experiments"]["mnistm_ripple"],
                                               methods=list(raw["experiments"]["mnistm_ripple"]["methods"]))
    edit(raw)
    with pytest.raises(PipelineError, match=re.escape(message)):
        registry.check_params(parse_params(raw))


def test_regression_rows_are_default_only_on_paired_experiments(tiny_params):
    assert not any(r.startswith("fmr_") or r == "finetune" for r in Experiment(tiny_params, "mnist5k_mnistm").rows)
    raw = copy.deepcopy(tiny_params.raw)
    del raw["experiments"]["mnistm_ripple"]["methods"]
    rows = Experiment(parse_params(raw), "mnistm_ripple").rows
    assert {"fmr_pool1", "fmr_pool2", "fmr_inc", "fmr_dec", "finetune"} <= set(rows)
    assert "fmr_pool3" not in rows  # LeNet has two post-pooling layers


def test_a_paired_experiment_regresses_from_the_source_model_and_inverts_one_variant(tiny_params):
    stages = {s.name: s for s in build_stages(tiny_params, ("mnistm_ripple",))}
    h1 = "models/supervised/mnistm-lenet_rgb/seed0.pt"
    for variant in ("pool1", "pool2", "inc", "dec"):
        stage = stages[f"regress_features__mnistm_ripple__{variant}__s0"]
        assert h1 in stage.deps and "data/domains/mnistm_ripple.npz" in stage.deps
        assert "fmr.regress.lr" in stage.params and not any(k.startswith("fmr.finetune") for k in stage.params)
        assert ("fmr.regress.weights_inc" in stage.params) == (variant in ("inc", "dec"))
    assert stages["finetune__mnistm_ripple__s0"].deps[0] == h1
    inversion = stages["invert_features__mnistm_ripple"]
    assert "models/fmr/mnistm_ripple/seed0/pool2.pt" in inversion.deps  # deepest: LeNet's pool2 (conv2)
    assert stages["prepare__mnistm_ripple"].deps[0] == "data/domains/mnistm.npz"
    assert "pipeline_lib/domains/shifts.py" in stages["prepare__mnistm_ripple"].deps
    assert "pipeline_lib/domains/shifts.py" not in stages["regress_features__mnistm_ripple__pool1__s0"].deps
