"""One Snakemake rule per stage kind (pipeline_lib/rules.py): patterns read off the stage list."""

import re

import pytest

from pipeline_helpers import ROOT, run, snakemake_plan
from pipeline_lib import registry
from pipeline_lib.config import load_params, parse_params
from pipeline_lib.dag import Stage, build_stages
from pipeline_lib.errors import PipelineError
from pipeline_lib.registry import Experiment, Figure
from pipeline_lib.rules import build_rules


def _regex(pattern: str, constraints: dict[str, str]) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", pattern)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?:{constraints[p]})" for i, p in enumerate(parts)))


def test_every_stage_is_a_job_of_its_kinds_rule_and_no_rule_claims_another_rules_file():
    params = load_params(ROOT / "params.yaml")
    stages = build_stages(params)
    rules = build_rules(params, stages)
    assert {r.name for r in rules} == {s.cmd.split()[2].removeprefix("stages.") for s in stages} | {"prepare_index"}
    assert len(rules) < 25 < len(stages)
    matchers = [(r.name, _regex(p, r.constraints)) for r in rules for p in r.outs]
    for rule in rules:
        for key, stage in rule.jobs.items():
            assert rule.stage(dict(zip(rule.wildcards, key))) is stage
            for out in stage.outs:
                claimed = {name for name, rx in matchers if rx.fullmatch(out)}
                assert claimed == {rule.name}, (out, claimed)


def test_outputs_laid_out_two_ways_in_one_rule_are_a_one_line_error():
    params = load_params(ROOT / "params.yaml")
    a = Stage("train__x__s0", "python3 -m stages.train --experiment x --seed 0", (), ("models/x/seed0.pt",), (),
              rule="train", args=(("experiment", "x"), ("seed", 0)))
    b = Stage("train__y__s0", "python3 -m stages.train --experiment y --seed 0", (), ("models/other/y0.pt",), (),
              rule="train", args=(("experiment", "y"), ("seed", 0)))
    with pytest.raises(PipelineError, match="lay out their outputs differently") as err:
        build_rules(params, [a, b])
    assert "\n" not in str(err.value)
    nameless = Stage("train__x__s0", "python3 -m stages.train --experiment x --seed 0", (), ("models/x/last.pt",),
                     (), rule="train", args=(("experiment", "x"), ("seed", 0)))
    with pytest.raises(PipelineError, match="does not name seed"):
        build_rules(params, [nameless])


def test_every_figure_is_an_output_with_one_caption_per_rule_and_unique_labels_in_its_subcategory():
    params = load_params(ROOT / "params.yaml")
    stages = build_stages(params)
    assert not [d for s in stages for d in s.deps + s.params if "captions" in d]  # a caption edit reruns nothing
    shown: dict[tuple[str, str], list[dict[str, str]]] = {}
    for rule in build_rules(params, stages):
        assert set(rule.captions) <= set(rule.outs), rule.name
        for pattern, caption in rule.captions.items():
            assert (ROOT / caption).read_text().strip(), caption
            for key in rule.jobs:
                wildcards = dict(zip(rule.wildcards, key))
                figure = rule.figure(wildcards, pattern)
                assert figure.category and figure.subcategory and figure.caption_file == caption, figure
                rows = [r for r in Experiment(params, wildcards["experiment"]).rows
                        if registry.row(r).model is not None] if figure.row_key else [""]
                for row in rows:  # a folder's files: one per report row with a model
                    shown.setdefault((figure.category, figure.subcategory), []).append(
                        rule.labels({**wildcards, "row": row}, pattern))
    assert {"Domains", "mnist5k_mnistm"} <= {category for category, _ in shown}
    for where, labels in shown.items():  # the HTML report lists a subcategory by its labels: all, each once
        assert len({tuple(sorted(x)) for x in labels}) == 1, (where, labels)
        assert len({tuple(x.items()) for x in labels}) == len(labels), where


def _figure_stage(experiment: str, caption: str, path: str = "") -> Stage:
    out = f"reports/{experiment}/picture.png"
    return Stage(f"draw__{experiment}", f"python3 -m stages.draw --experiment {experiment}", (), (out,), (),
                 rule="draw", args=(("experiment", experiment),),
                 figures=(Figure(path or out, caption, experiment, "Method", (("figure", "picture"),)),))


def test_a_rule_with_two_captions_for_one_output_or_a_figure_that_is_no_output_is_a_one_line_error():
    params = load_params(ROOT / "params.yaml")
    build_rules(params, [_figure_stage("x", "tradeoff"), _figure_stage("y", "tradeoff")])
    with pytest.raises(PipelineError, match="stages draw__x and draw__y show different outputs or captions") as err:
        build_rules(params, [_figure_stage("x", "tradeoff"), _figure_stage("y", "confusion")])
    assert "\n" not in str(err.value)
    with pytest.raises(PipelineError, match="reports/captions/no_such.rst does not exist; write it"):
        build_rules(params, [_figure_stage("x", "no_such")])
    with pytest.raises(PipelineError, match="figure reports/x/other.png is not one of its outputs"):
        build_rules(params, [_figure_stage("x", "tradeoff", "reports/x/other.png")])


def test_resources_come_from_params_per_rule_and_two_gpus_run_under_torchrun(tiny_raw):
    tiny_raw["resources"] = {"default": {"mem_mb": 2000}, "rules": {"train_cyclegan": {"gpu": 2, "runtime": 600}}}
    params = parse_params(tiny_raw)
    rules = {r.name: r for r in build_rules(params, build_stages(params))}
    cyclegan, evaluate = rules["train_cyclegan"].resources, rules["evaluate"].resources
    assert (cyclegan.gpu, cyclegan.runtime, cyclegan.mem_mb) == (2, 600, 2000)
    assert (evaluate.gpu, evaluate.runtime, evaluate.cpus_per_task) == (0, 60, params.threads_per_job)
    rule = rules["train_cyclegan"]
    wildcards = dict(zip(rule.wildcards, next(iter(rule.jobs))))
    assert rule.command(wildcards, 2).startswith("torchrun --standalone --nproc_per_node 2 -m stages.train_cyclegan ")
    assert rule.command(wildcards, 1).startswith("python3 -m stages.train_cyclegan ")
    tiny_raw["resources"]["rules"]["train_cyclgan"] = {"gpu": 1}
    with pytest.raises(PipelineError, match="resources.rules.train_cyclgan: no such rule"):
        build_rules(parse_params(tiny_raw), build_stages(parse_params(tiny_raw)))
    tiny_raw["resources"]["rules"] = {"train_cyclegan": {"gpus": 1}}
    with pytest.raises(PipelineError, match="gpus"):
        parse_params(tiny_raw)


def test_snakemake_selects_jobs_by_rule_name(source_copy):
    until = snakemake_plan(source_copy, "--until", "translate")  # the default target: dvc_experiments
    assert {job["rule"] for job in until.values()} == {"prepare", "train_supervised", "train_cyclegan", "translate"}
    listed = run(["snakemake", "--list-rules"], source_copy).stdout.split()
    assert "train_supervised" in listed and len(listed) < 25


@pytest.mark.parametrize("profile", ["tiny", "demo", "full", "paper"])
def test_every_profile_builds_its_rules(profile):
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = profile
    params = parse_params(raw)
    rules = {r.name: r for r in build_rules(params, build_stages(params))}
    assert rules["train_cyclegan"].resources.gpu == (1 if profile == "paper" else 0)
    assert rules["report"].resources.gpu == 0
