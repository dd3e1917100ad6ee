"""Settings a job cannot run with on this machine, found when the DAG first needs the job (the Snakefile asks,
before any job starts): each check returns the one line to stop with, or None.

:func:`pipeline_lib.domains.missing_root` is the dataset folder's check; the device's is
:func:`pipeline_lib.gpus.check_device`. Light to import: the Snakefile loads it for every plan.
"""

from __future__ import annotations

from pipeline_lib.config import Params
from pipeline_lib.errors import PipelineError

#: backbones whose ImageNet weights are read from a local file, never downloaded: pipeline_lib.models.resnet.ARCHS,
#: named here so that a plan loads no torch for the backbones that read none
LOCAL_WEIGHTS_ARCHS = ("resnet18", "resnet50")


def missing_weights(params: Params, backbone: str) -> str | None:
    """The one line a stage building ``backbone`` would stop with because its ImageNet weights file (``weights:``,
    or torch's hub cache with ``pretrained: true``) is not there; None when it is, or when none is read. The
    segmentation nets' weights are downloaded on first use where the machine is online, so they are not checked."""
    b = params.backbones[backbone]
    if b.arch not in LOCAL_WEIGHTS_ARCHS or not (b.pretrained or b.weights is not None):
        return None
    from pipeline_lib.models.resnet import weights_file  # loads torch: only for a backbone that reads a file

    try:
        weights_file(b.arch, b.weights, b.pretrained)
    except PipelineError as err:
        return f"backbones.{backbone}: {err}"
    return None
