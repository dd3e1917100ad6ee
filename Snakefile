# The pipeline DAG for Snakemake. Rules are generated from pipeline_lib/dag.py, the same
# stage list that dvc.yaml is written from (`make dag`), so the two runners cannot drift:
# one rule per stage kind (train_supervised, translate, evaluate, ...), its jobs told apart by
# wildcards (pipeline_lib/rules.py), its resources from params.yaml's `resources`.
#
#   snakemake --cores 2 reports/mnist5k_mnistm.csv      # any experiment in params.yaml
#   snakemake --cores 2                                 # the experiments in dvc_experiments
#   snakemake --report reports/report.html              # self-contained HTML report: per experiment, per
#                                                       # method, each figure with its caption (reports/captions/)

import functools
import json
import os
import sys

from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages, dvc_yaml_text, param_values
from pipeline_lib.errors import PipelineError
from pipeline_lib.gpus import check_device
from pipeline_lib.locks import claim_workspace, find_runner
from pipeline_lib.domains.manifest import ensure_manifest, refresh
from pipeline_lib.domains import missing_root
from pipeline_lib.preflight import missing_weights
from pipeline_lib.rules import ROW_FILES, build_rules
from pipeline_lib import paths

def _cluster_invocation():
    """An executor or a profile on the command line: the DAG is planned on a login node, which may lack the GPUs
    the jobs will have."""
    return "SNAKEMAKE_PROFILE" in os.environ or any(
        a in ("-e", "--executor", "--profile") or a.startswith(("--executor=", "--profile=")) for a in sys.argv)


try:
    PARAMS = load_params("params.yaml")
    STAGES = build_stages(PARAMS)  # also checks the experiments' rows and class lists
    DVC_TEXT = dvc_yaml_text(PARAMS)
    RULES = build_rules(PARAMS, STAGES)  # one rule per stage kind, its jobs told apart by wildcards
    if not workflow.remote_exec and not _cluster_invocation():
        check_device(PARAMS.device)  # a missing GPU stops here, not in a job whose cleanup deletes its old output
except PipelineError as err:
    sys.exit(f"error: {err}")

if not Path("dvc.yaml").is_file() or Path("dvc.yaml").read_text() != DVC_TEXT:
    print("warning: dvc.yaml is out of date with params.yaml; run `make dag` so both runners agree",
          file=sys.stderr)

# jobs run `python3 -m stages.<name>`: the interpreter running Snakemake (the project's .venv) comes first,
# so `.venv/bin/snakemake ...` works without activating the environment
envvars:
    "PATH",

os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# one runner per workspace (pipeline_lib/locks.py): claim it before any job starts, so that a Snakemake started
# while `dvc repro` works here stops before it deletes a single output (every stage checks again itself)
onstart:
    _runner = find_runner()
    if _runner is not None:
        try:
            claim_workspace(Path.cwd(), _runner)
        except PipelineError as err:
            sys.exit(f"error: {err}")

report: "reports/workflow.rst"

rule all:
    input: [str(paths.report_csv(e)) for e in PARAMS.dvc_experiments]
    default_target: True

# a default storage provider (profiles/kubernetes: S3) keeps the jobs' files under .snakemake/storage/...; the code
# and params.yaml stay with the workflow's source (local())
STORAGE = workflow.storage_settings is not None and workflow.storage_settings.default_storage_provider is not None


# A dataset folder's manifest (pipeline_lib/domains/manifest.py) is the input through which Snakemake sees a real or
# folder domain's files. Each one exists before the DAG is built (unscanned at first): Snakemake caches which files
# a folder holds when it first looks into it, so one written later would count as missing.
if not workflow.remote_exec:
    for _raw in dict.fromkeys(r for stage in STAGES for r in stage.raw):
        ensure_manifest(_raw.domain, _raw.root)


@functools.cache
def _manifest(raw):
    """Refresh the manifest when the DAG first needs the domain's prepare job (a dry run too): it is rewritten only
    when a file's bytes, or the set of files, changed, which makes that prepare and what follows out of date."""
    try:
        found = refresh(raw.domain, raw.root)
    except OSError as err:  # prepare reads the folder again and stops with one line naming the problem
        print(f"warning: {raw.manifest} not refreshed: {err}", file=sys.stderr)
    else:
        if not found.exists and (problem := missing_root(PARAMS, raw.domain)):  # before any job runs
            sys.exit(f"error: {problem}")
        if found.hashed >= 1000:
            print(f"{raw.domain}: hashed {found.hashed} files of {raw.root} for {raw.manifest}", file=sys.stderr)
    return local(raw.manifest) if STORAGE else raw.manifest


@functools.cache
def _check_weights(backbone):
    """Stop before any job when a job of the DAG builds a backbone whose ImageNet weights file is not there."""
    if problem := missing_weights(PARAMS, backbone):
        sys.exit(f"error: {problem}")


def _inputs(rule):
    def inputs(wildcards):
        stage = rule.stage(wildcards)
        deps = [local(d) if STORAGE and d.endswith(".py") else d for d in stage.deps]
        if workflow.remote_exec:  # a cluster job's Snakemake runs the job it is given: the submitting one
            return deps           # refreshed the manifests and decided to run it
        if stage.backbone is not None:
            _check_weights(stage.backbone)
        return deps + [_manifest(raw) for raw in stage.raw]
    return inputs


def _cmd(rule):
    return lambda wildcards, output, resources: rule.command(wildcards, resources.gpu, str(output[0]), os.getcwd())


def _values(rule):  # the params a job reads, resolved: Snakemake reruns the job when they change
    return lambda wildcards: json.dumps(param_values(PARAMS, rule.stage(wildcards).params), sort_keys=True)


def _output(rule, pattern):
    out = directory(pattern) if pattern in rule.dir_outs else pattern
    if pattern not in rule.captions:
        return out
    # a figure of the report: its caption file is the rule's, where it is filed and its labels the job's (a
    # folder's files are labelled with their row); the caption is no input or param, so editing it reruns nothing
    return report(out, caption=rule.captions[pattern], patterns=[ROW_FILES] if pattern in rule.dir_outs else [],
                  category=lambda wildcards: rule.figure(wildcards, pattern).category,
                  subcategory=lambda wildcards: rule.figure(wildcards, pattern).subcategory,
                  labels=lambda wildcards: rule.labels(wildcards, pattern))


for _rule in RULES:
    rule:
        name: _rule.name
        input: _inputs(_rule)
        output: [_output(_rule, o) for o in _rule.outs]
        params:
            cmd=_cmd(_rule),
            values=_values(_rule),
        log: _rule.log
        benchmark: _rule.benchmark
        wildcard_constraints: **_rule.constraints
        threads: PARAMS.threads_per_job
        resources:
            gpu=_rule.resources.gpu,
            mem_mb=_rule.resources.mem_mb,
            runtime=_rule.resources.runtime,
            cpus_per_task=_rule.resources.cpus_per_task,
        shell: "{params.cmd} 2>&1 | tee {log:q}"
