import copy

import pytest
import yaml

from pipeline_lib.config import PROFILES, load_params, parse_params, resolve_profile
from pipeline_lib.errors import PipelineError
from pipeline_helpers import ROOT


def test_committed_params_are_valid_for_every_profile(raw_params):
    for profile in PROFILES:
        raw = copy.deepcopy(raw_params)
        raw["profile"] = profile
        params = parse_params(raw)
        assert params.profile == profile
        assert params.train_supervised.epochs > 0


def test_profile_values_are_resolved(tiny_raw):
    tiny = parse_params(tiny_raw)
    demo = parse_params({**tiny_raw, "profile": "demo"})
    assert tiny.train_supervised.epochs == tiny_raw["train_supervised"]["epochs"]["tiny"]
    assert demo.train_supervised.epochs == tiny_raw["train_supervised"]["epochs"]["demo"]
    assert tiny.prepare.syndigits.n_train < demo.prepare.syndigits.n_train


def test_full_profile_takes_the_paper_value_unless_it_gives_its_own():
    raw = {"a": {"tiny": 1, "demo": 2, "paper": 3}, "b": {"tiny": 1, "demo": 2, "full": 4, "paper": 3}}
    assert resolve_profile(raw, "full") == {"a": 3, "b": 4}
    assert resolve_profile(raw, "paper") == {"a": 3, "b": 3}
    assert resolve_profile(raw, "demo") == {"a": 2, "b": 2}


def test_committed_full_profile_cuts_the_digit_stages_for_a_cpu(raw_params):
    full = parse_params({**raw_params, "profile": "full"})
    paper = parse_params({**raw_params, "profile": "paper"})
    assert full.train_supervised.epochs == paper.train_supervised.epochs  # the paper's epochs, a step budget
    assert full.train_supervised.max_steps and paper.train_supervised.max_steps is None
    assert full.cycada.adapt_features.max_steps and paper.cycada.adapt_features.max_steps is None
    assert full.cycada.cyclegan.max_steps_per_epoch is not None
    assert full.train_supervised.lr == paper.train_supervised.lr  # not cut: the paper's
    assert not full.backbones["street"].pretrained  # no download on the CPU profile


def test_resolve_profile_requires_every_profile():
    with pytest.raises(PipelineError, match=r"train\.epochs .* lacks paper"):
        resolve_profile({"train": {"epochs": {"tiny": 1, "demo": 2}}}, "tiny")
    with pytest.raises(PipelineError, match=r"lacks paper"):  # full does not stand in for paper
        resolve_profile({"epochs": {"tiny": 1, "demo": 2, "full": 3}}, "full")


def test_mistyped_key_names_the_key(tiny_raw):
    tiny_raw["train_supervised"]["lrr"] = tiny_raw["train_supervised"].pop("lr")
    with pytest.raises(PipelineError) as err:
        parse_params(tiny_raw)
    msg = str(err.value)
    assert "train_supervised.lrr: unknown key (did you mean 'lr'?)" in msg and "\n" not in msg


def test_wrong_type_and_range_are_rejected(tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["train_supervised"]["batch_size"] = 0
    with pytest.raises(PipelineError, match="train_supervised.batch_size"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["seeds"] = "zero"
    with pytest.raises(PipelineError, match="seeds"):
        parse_params(bad)


def test_unknown_domain_backbone_and_experiment(tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["experiments"]["mnist5k_mnistm"]["target"] = "mnist_m"
    with pytest.raises(PipelineError, match="unknown domain 'mnist_m'"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["experiments"]["mnist5k_mnistm"]["backbone"] = "resnet"
    with pytest.raises(PipelineError, match="unknown backbone 'resnet'"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["dvc_experiments"] = ["nope"]
    with pytest.raises(PipelineError, match="unknown experiment 'nope'"):
        parse_params(bad)


def test_bad_profile_and_bad_yaml(tmp_path, tiny_raw):
    with pytest.raises(PipelineError, match="profile: must be one of tiny, demo, full, paper"):
        parse_params({**tiny_raw, "profile": "huge"})
    path = tmp_path / "params.yaml"
    path.write_text("profile: tiny\nseeds: [0\n")
    with pytest.raises(PipelineError, match="not valid YAML at line"):
        load_params(path)
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "missing.yaml")
    path.write_text(yaml.safe_dump(tiny_raw))
    assert load_params(path).profile == "tiny"


def test_segmentation_experiments_are_checked_against_their_backbone(tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["experiments"]["scenes"]["backbone"] = "lenet"
    with pytest.raises(PipelineError, match="source 'scenes_game' is a segmentation domain but backbone 'lenet'"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    del bad["segmentation"]
    with pytest.raises(PipelineError, match="add the `segmentation:` section"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["backbones"]["street"]["channels"] = 1
    with pytest.raises(PipelineError, match="takes colour images"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["data"]["folders"].update({"cityscapes": {"root": "x", "classes": ["a"]}})
    with pytest.raises(PipelineError, match="clashes with a built-in domain"):
        parse_params(bad)
    bad = copy.deepcopy(tiny_raw)
    bad["data"]["folders"].update({"mine": {"root": "x", "classes": ["a", "b"], "ids": [3]}})
    with pytest.raises(PipelineError, match="ids lists 1 values for 2 classes"):
        parse_params(bad)


def test_segmentation_track_sections_and_experiment_seeds(tiny_raw):
    tiny_raw["segmentation"]["cycada"]["cyclegan"]["semantic_loss"] = False  # what YAML makes of a bare `off`
    tiny_raw["experiments"]["scenes"]["seeds"] = [3, 4]
    params = parse_params(tiny_raw)
    seg, cls = params.track("street"), params.track("lenet")
    assert seg.prefix == "segmentation." and cls.prefix == ""
    cyclegan = params.section("cycada", "street").cyclegan
    assert cyclegan.semantic_loss == "off" and cyclegan.crop == (64, 64)
    assert not hasattr(params.section("cycada", "lenet").cyclegan, "crop")
    with pytest.raises(PipelineError, match="no section segmentation.nope"):
        params.section("nope", "street")
    assert cls.train_supervised.epochs == 1 and not hasattr(cls.train_supervised, "crop")
    assert params.experiment_seeds("scenes") == (3, 4) and params.experiment_seeds("mnist_usps") == (0,)


def test_params_yaml_is_read_with_yaml_1_2_booleans_as_dvc_reads_it(tmp_path):
    """DVC reads params.yaml with ruamel.yaml (YAML 1.2): `off`/`yes` are strings there, so they are here too."""
    from pipeline_lib.config import _ParamsLoader

    raw = yaml.load("a: off\nb: yes\nc: true\nd: False\ne: 'on'\n", Loader=_ParamsLoader)
    assert raw == {"a": "off", "b": "yes", "c": True, "d": False, "e": "on"}


def test_a_key_given_twice_is_refused_with_both_lines_as_dvc_refuses_it(tmp_path):
    """The last of two `lr:` would silently win in PyYAML; DVC (ruamel.yaml) refuses the file. So do we."""
    from dvc.utils.serialize import YAMLFileCorruptedError, parse_yaml

    lines = (ROOT / "params.yaml").read_text().splitlines(keepends=True)
    section = next(i for i, line in enumerate(lines) if line.startswith("train_supervised:"))
    lr = next(i for i in range(section, len(lines)) if lines[i].startswith("  lr:"))
    lines.insert(lr + 2, "  lr: 5.0e-4\n")
    path = tmp_path / "params.yaml"
    path.write_text("".join(lines))
    with pytest.raises(PipelineError) as err:
        load_params(path)
    assert str(err.value) == (f"{path}: key 'lr' is given twice in one mapping, at lines {lr + 1} and {lr + 3} (DVC "
                              "refuses such a file; otherwise the last would win): keep one")
    with pytest.raises(YAMLFileCorruptedError):
        parse_yaml(path.read_text(), str(path))
    lines.pop(lr + 2)  # the file as shipped, merges (`<<: *anchor`) and their overrides included, passes both
    path.write_text("".join(lines))
    assert load_params(path).train_supervised.lr == 1.0e-4
    parse_yaml(path.read_text(), str(path))


def test_dvc_exp_run_set_rewrites_params_yaml_to_the_same_params_but_the_key_it_sets(tmp_path):
    """`dvc exp run -S` rewrites the whole file through DVC's YAML writer (flow lists become block lists, YAML merge
    keys are expanded, the quotes of "off" go): every other value must read back unchanged."""
    from dvc.utils.hydra import apply_overrides

    from pipeline_helpers import ROOT

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    apply_overrides(str(path), ["cycada.adapt_features.lr=0.0003"])
    assert path.read_text() != (ROOT / "params.yaml").read_text()
    before, after = load_params(ROOT / "params.yaml"), load_params(path)
    assert after.cycada.adapt_features.lr == 0.0003
    changed = after.model_dump()
    changed["cycada"]["adapt_features"]["lr"] = before.cycada.adapt_features.lr
    assert changed == before.model_dump()
    assert changed["segmentation"]["cycada"]["cyclegan"]["semantic_loss"] == "off"


def test_a_stage_validates_a_method_section_when_it_reads_it_and_to_the_same_values(tiny_raw):
    full, lazy = parse_params(tiny_raw), parse_params(tiny_raw, sections="lazy")
    for name in ("cycada", "gam", "calibrator", "i2i", "fmr"):
        for backbone in ("lenet", "street"):
            assert lazy.section(name, backbone) == full.section(name, backbone), (name, backbone)
    with pytest.raises(PipelineError, match=r"^params.yaml: no section segmentation\.nope$"):
        lazy.section("nope", "street")


def test_a_bad_value_in_a_lazy_section_is_the_same_one_line_error_when_read(tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["segmentation"]["cycada"]["cyclegan"]["lrr"] = bad["segmentation"]["cycada"]["cyclegan"].pop("lr")
    with pytest.raises(PipelineError) as eager:
        parse_params(bad)
    lazy = parse_params(bad, sections="lazy")  # a stage that reads no CyCADA section is not stopped
    lazy.section("gam", "street")
    with pytest.raises(PipelineError) as err:
        lazy.section("cycada", "street")
    assert str(err.value) == str(eager.value)
    assert str(err.value).startswith("params.yaml: segmentation.cycada.cyclegan.lrr: unknown key")


def test_loading_params_lazily_imports_no_method_params_module():
    import subprocess
    import sys
    code = ("import sys; from pipeline_lib.config import load_params; p = load_params('params.yaml', 'lazy'); "
            "before = sorted(m for m in sys.modules if m.endswith('_params')); p.section('gam', 'lenet'); "
            "print(before, sorted(m for m in sys.modules if m.endswith('_params')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] ['pipeline_lib.methods.cycada_params', 'pipeline_lib.methods.gam_params']" or \
        out.strip() == "[] ['pipeline_lib.methods.gam_params']"


@pytest.mark.parametrize("name", ["a/b", "a\\b", "a__b", ".hidden", "-x", "it's", "office.31", "trailing ", ""])
def test_a_name_that_cannot_travel_through_paths_jobs_and_dvc_stages_is_refused(tiny_raw, name):
    raw = copy.deepcopy(tiny_raw)
    raw["data"]["folders"][name] = raw["data"]["folders"]["amazon"]
    with pytest.raises(PipelineError, match=r"data\.folders: domain name .* cannot be used in file, job and DVC"):
        parse_params(raw)
    raw = copy.deepcopy(tiny_raw)
    raw["experiments"][name] = raw["experiments"]["mnist5k_mnistm"]
    with pytest.raises(PipelineError, match=r"experiment name .* cannot be used"):
        parse_params(raw)


def test_names_with_spaces_dashes_and_letters_beyond_ascii_are_kept(tiny_raw):
    raw = copy.deepcopy(tiny_raw)
    for name in ("my dom", "office31-amazon", "café"):
        raw["data"]["folders"][name] = raw["data"]["folders"]["amazon"]
    raw["experiments"]["my exp"] = raw["experiments"]["mnist5k_mnistm"]
    assert {"my dom", "café"} <= set(parse_params(raw).data.folders)
