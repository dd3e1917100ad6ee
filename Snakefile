# The pipeline DAG for Snakemake. Rules are generated from pipeline_lib/dag.py, the same
# stage list that dvc.yaml is written from (`make dag`), so the two runners cannot drift.
#
#   snakemake --cores 2 reports/mnist5k_mnistm.csv      # any experiment in params.yaml
#   snakemake --cores 2                                 # the experiments in dvc_experiments
#   snakemake --report reports/report.html              # self-contained HTML report

import json
import os
import sys

from pipeline_lib.config import load_params
from pipeline_lib.dag import build_stages, dvc_yaml_text, param_values
from pipeline_lib.errors import PipelineError
from pipeline_lib.locks import claim_workspace, find_runner
from pipeline_lib import paths

try:
    PARAMS = load_params("params.yaml")
    STAGES = build_stages(PARAMS)  # also checks the experiments' rows and class lists
    DVC_TEXT = dvc_yaml_text(PARAMS)
except PipelineError as err:
    sys.exit(f"error: {err}")

if not Path("dvc.yaml").is_file() or Path("dvc.yaml").read_text() != DVC_TEXT:
    print("warning: dvc.yaml is out of date with params.yaml; run `make dag` so both runners agree",
          file=sys.stderr)

# jobs run `python3 -m stages.<name>`: the interpreter running Snakemake (the project's .venv) comes first,
# so `.venv/bin/snakemake ...` works without activating the environment
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

for _stage in STAGES:
    rule:
        name: _stage.name
        input: _stage.deps
        output:
            [report(o, category=_stage.report_category) if o in _stage.report_outs
             else directory(o) if o in _stage.dir_outs else o
             for o in _stage.outs]
        params:
            # bound now: directives run at job time, when the loop variable has moved on
            cmd=_stage.cmd,
            values=json.dumps(param_values(PARAMS, _stage.params), sort_keys=True),
        log: f"logs/{_stage.name}.log"
        benchmark: f"benchmarks/{_stage.name}.tsv"
        threads: PARAMS.threads_per_job
        shell: "{params.cmd} 2>&1 | tee {log}"
