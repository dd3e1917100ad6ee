"""Exact dependencies: code from the import closure of a stage, params from the keys it reads.

The e2e tests check the closure against what each stage really loaded (``sys.modules``) and that
editing a module reruns exactly its users under both runners; these tests pin the rules.
"""

from __future__ import annotations

import copy

from pipeline_lib import codedeps
from pipeline_lib.config import parse_params
from pipeline_lib.dag import build_stages, param_values


def _stage(params, name):
    return next(s for s in build_stages(params) if s.name == name)


def test_a_stage_depends_on_its_own_backbone_only(tiny_params):
    lenet = _stage(tiny_params, "train_supervised__mnist5k__lenet_rgb__s0").deps
    street = _stage(tiny_params, "train_supervised__scenes_game__street__s0").deps
    assert "pipeline_lib/models/lenet.py" in lenet and "pipeline_lib/models/segmenters.py" not in lenet
    assert "pipeline_lib/models/segmenters.py" in street and "pipeline_lib/models/lenet.py" not in street
    for other in ("drn.py", "erfnet.py", "fcn8s.py", "calibrator.py", "cyclegan.py", "resnet.py"):
        assert f"pipeline_lib/models/{other}" not in lenet + street
    # select loads a row through its loader (pipeline_lib.models:load_task_model): still the row's backbone only
    select = _stage(tiny_params, "select__mnist5k_mnistm__cycada_pixel_feat").deps
    assert "pipeline_lib/models/lenet.py" in select
    assert not {f"pipeline_lib/models/{m}.py" for m in ("segmenters", "drn", "erfnet", "fcn8s", "resnet")} & set(select)


def test_prepare_depends_on_its_own_domain_builder_only(tiny_params):
    deps = _stage(tiny_params, "prepare__mnistm").deps
    assert "pipeline_lib/domains/mnistm.py" in deps and "data/domains/mnist5k.npz" in deps
    assert not {"pipeline_lib/domains/syndigits.py", "pipeline_lib/domains/torchvision_digits.py",
                "pipeline_lib/domains/scenes/renderers.py"} & set(deps)
    scenes = _stage(tiny_params, "prepare__scenes_game").deps
    assert {"pipeline_lib/domains/scenes/renderers.py", "pipeline_lib/domains/scenes/layout.py"} <= set(scenes)


def test_the_discriminators_are_a_dependency_of_the_stages_that_import_them(tiny_params):
    users = {s.name.split("__")[0] for s in build_stages(tiny_params)
             if "pipeline_lib/models/discriminators.py" in s.deps}
    assert {"adapt_features", "match_activations", "train_calibrator"} <= users
    assert not users & {"prepare", "train_supervised", "translate", "evaluate", "report"}


def test_only_the_report_depends_on_the_papers_values(tiny_params):
    """A corrected paper number reruns the report alone: no training or evaluation stage imports them."""
    papers = {"pipeline_lib/paper_numbers.py", *(f"pipeline_lib/methods/{m}_papers.py" for m in
                                                 ("supervised", "cycada", "gam", "calibrator", "i2i"))}
    users = {s.name.split("__")[0] for s in build_stages(tiny_params) if papers & set(s.deps)}
    assert users == {"report"}
    report = next(s for s in build_stages(tiny_params) if s.name.startswith("report__"))
    assert papers <= set(report.deps)


def test_a_stage_depends_on_the_params_modules_of_the_sections_it_reads_only(tiny_params):
    """A stage loads a method's params module when it reads that section (Params.section), not before."""
    gam = "pipeline_lib/methods/gam_params.py"
    users = {s.name.split("__")[0] for s in build_stages(tiny_params) if gam in s.deps}
    assert {"gaussian_match", "match_activations"} <= users  # GAM's own stages
    assert users <= {"gaussian_match", "match_activations", "adapt_features", "report"}  # adda_reg reads gam.*
    prepare = _stage(tiny_params, "prepare__mnistm").deps
    assert not [d for d in prepare if d.endswith("_params.py")]
    cyclegan = _stage(tiny_params, "train_cyclegan__mnist5k_mnistm__s0").deps
    assert "pipeline_lib/methods/cycada_params.py" in cyclegan
    assert not {"pipeline_lib/methods/calibrator_params.py", gam} & set(cyclegan)


def test_rows_readers_depend_on_every_declaration(tiny_params):
    evaluate = _stage(tiny_params, "evaluate__mnist5k_mnistm__calibrator__s0").deps
    assert {f"{m.replace('.', '/')}.py" for m in codedeps.spec_modules()} <= set(evaluate)
    assert "pipeline_lib/models/calibrator.py" in evaluate  # the row's loader
    assert "pipeline_lib/models/calibrator.py" not in _stage(tiny_params, "evaluate__mnist5k_mnistm__gam__s0").deps


def test_imports_under_type_checking_and_in_functions(tmp_path, monkeypatch):
    pkg = tmp_path / "pipeline_lib"
    (pkg / "domains").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipeline_lib import b\n"
                              "def f():\n    from . import c\n")
    (pkg / "b.py").write_text("")
    (pkg / "c.py").write_text("")
    (pkg / "domains" / "__init__.py").write_text("def build():\n    from pipeline_lib.domains import x\n")
    (pkg / "domains" / "x.py").write_text("")
    monkeypatch.setattr(codedeps, "ROOT", tmp_path)
    codedeps.imports.cache_clear()
    try:
        assert codedeps.closure(["pipeline_lib.a"]) == {"pipeline_lib", "pipeline_lib.a", "pipeline_lib.c"}
        assert "pipeline_lib.domains.x" not in codedeps.closure(["pipeline_lib.domains"])
        assert "pipeline_lib.domains.x" in codedeps.closure(["pipeline_lib.domains"], ["pipeline_lib.domains.x"])
    finally:
        codedeps.imports.cache_clear()


def _values(params):
    """Params keys and values of the stages of two experiments: an own-folder one and the default."""
    return {s.name: (s.params, param_values(params, s.params))
            for s in build_stages(params, ("own", "mnist5k_mnistm"))}


def test_unrelated_params_keys_change_no_stage_and_a_domains_own_keys_change_its_stages(tiny_raw):
    tiny_raw["data"]["folders"].update({
        "mine": {"root": "/data/mine", "classes": list("abc")},
        "theirs": {"root": "/data/theirs", "classes": list("abc")}})
    tiny_raw["experiments"]["own"] = {"source": "mine", "target": "theirs", "backbone": "street",
                                      "methods": ["source_only", "oracle"]}
    before = _values(parse_params(tiny_raw))
    unrelated = copy.deepcopy(tiny_raw)
    unrelated["data"]["roots"]["cityscapes"] = "/elsewhere"
    unrelated["data"]["folders"]["another"] = {"root": "/data/another", "classes": ["x"]}
    unrelated["data"]["roots"]["mnist"] = "/elsewhere/mnist"
    after = _values(parse_params(unrelated))
    assert after == before  # another dataset's root, another folder domain: nothing of these experiments
    for key, value in (("test_glob", "seq07_*"), ("root", "/data/moved"), ("classes", list("abd"))):
        own = copy.deepcopy(tiny_raw)
        own["data"]["folders"]["mine"][key] = value
        if key == "classes":  # source and target must agree
            own["data"]["folders"]["theirs"][key] = value
        after = _values(parse_params(own))
        changed = {n for n in before if before[n] != after[n]}
        # its own split, root or classes: its prepare and every stage that opens its frames
        assert {"prepare__mine", "train_supervised__mine__street__s0", "evaluate__own__source_only__s0",
                "report__own"} <= changed, key
        assert not any("mnist" in n for n in changed), key
        if key != "classes":
            assert not {"prepare__theirs", "train_supervised__theirs__street__s0"} & changed, key
