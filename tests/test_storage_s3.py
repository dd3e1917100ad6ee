"""Snakemake with S3 as its default storage provider (profiles/kubernetes): the jobs find their files.

With a default storage provider Snakemake keeps a job's files under ``.snakemake/storage/s3/<bucket>/<prefix>/``
and uploads its outputs afterwards; the stages name their files relative to their working folder, so the
Snakefile runs each job there (pipeline_lib/rules.py). Checked against moto's S3 server on loopback with the
local executor (no Kubernetes here): the `prepare` jobs' outputs become objects under the prefix, nothing is
written into the project folder, and a second run plans nothing.
"""

from __future__ import annotations

import pytest

from pipeline_helpers import copy_project, run
from remote_servers import Remote, s3_remote  # noqa: F401 (fixture)

pytest.importorskip("snakemake_storage_plugin_s3", reason="snakemake-storage-plugin-s3 not installed "
                    "(pip install -e '.[test]')")

pytestmark = pytest.mark.slow


def test_jobs_read_and_write_through_s3_storage(tmp_path, s3_remote: Remote):  # noqa: F811 (the fixture imported above)
    project = copy_project(tmp_path / "uda", profile="tiny", seeds=[0])
    opts = s3_remote.options
    storage = ["--default-storage-provider", "s3", "--default-storage-prefix", s3_remote.url,
               "--storage-s3-endpoint-url", opts["endpointurl"], "--storage-s3-access-key", opts["access_key_id"],
               "--storage-s3-secret-key", opts["secret_access_key"]]
    target = "data/domains/mnistm.npz"  # MNIST-M is drawn over mnist5k: two prepare jobs
    out = run(["snakemake", target, "--cores", "2", *storage], project)  # targets first: options take lists
    assert "cd .snakemake/storage/s3/" in out.stdout + out.stderr  # each job ran in the storage copy
    stored = s3_remote.objects()
    for domain in ("mnist5k", "mnistm"):
        assert {f"data/domains/{domain}.npz", f"data/domains/{domain}.png"} <= stored, stored
    assert not (project / "data" / "domains").exists()  # nothing written beside the code
    again = run(["snakemake", target, "-n", "--cores", "1", *storage], project)
    assert "Nothing to be done" in again.stdout + again.stderr
