"""Several processes for one stage: ``torchrun --nproc_per_node N -m stages.<name> ...`` (data parallel).

torchrun starts N copies of the stage and tells each its place through the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Every copy builds the same models from
the same seed, reads its shard of each global batch (:class:`pipeline_lib.batches.ShardedBatches`),
and the gradients are averaged across processes before every optimiser step
(:func:`average_gradients`, called by :func:`pipeline_lib.training.optimizer_step`), so all copies take
the same steps and keep identical weights. Rank 0 alone writes (:mod:`pipeline_lib.artifacts`).

Without torchrun (``WORLD_SIZE`` unset or 1) every function here is a no-op or returns its input, so a
plain ``python -m stages.<name>`` computes exactly what it did before this module existed.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping, TypeVar

import torch
from torch import nn

from pipeline_lib.errors import PipelineError

T = TypeVar("T")

#: elements per all-reduce bucket (128 MiB of float32): one call per bucket, not per tensor, as DDP does,
#: without a second copy of a large model's gradients at once
BUCKET_ELEMENTS = 1 << 25


def world_size() -> int:
    """Processes in the job (torchrun's ``WORLD_SIZE``; 1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's place in the job, 0 to ``world_size() - 1`` (torchrun's ``RANK``)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's place on its machine: the GPU it uses (torchrun's ``LOCAL_RANK``)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0: the one process that writes artifacts, histories and pictures."""
    return rank() == 0


def enabled() -> bool:
    """Several processes: the collectives below run (one process: every function here is a no-op)."""
    return world_size() > 1


def init() -> None:
    """Join torchrun's process group when there are several processes; nothing otherwise.

    On a machine with CUDA each process takes GPU ``LOCAL_RANK`` (``torch.device("cuda")`` then means that
    one) and CUDA tensors are reduced with NCCL, CPU tensors (the scalars, a ``device: cpu`` run) with gloo;
    without CUDA everything goes through gloo.
    """
    if not enabled() or torch.distributed.is_initialized():
        return
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise PipelineError(f"WORLD_SIZE is {world_size()} but {' and '.join(missing)} unset: start several "
                            "processes with torchrun --nproc_per_node N -m stages.<name> ..., or unset WORLD_SIZE")
    backend = "gloo"
    if torch.cuda.is_available():
        if local_rank() >= torch.cuda.device_count():
            raise PipelineError(f"process {local_rank()} of torchrun --nproc_per_node has no GPU of its own "
                                f"({torch.cuda.device_count()} visible): run at most that many processes per machine "
                                "(for CPU processes hide the GPUs: CUDA_VISIBLE_DEVICES=)")
        torch.cuda.set_device(local_rank())
        backend = "cpu:gloo,cuda:nccl"
    torch.distributed.init_process_group(backend)


def teardown() -> None:
    """Leave the process group (at the stage's exit, whatever its outcome)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here."""
    if enabled():
        torch.distributed.barrier()


def mean(value: float) -> float:
    """The mean of ``value`` over the processes (in float64): what a single process would log for the global
    batch when each shard's value is a mean over an equal share of it."""
    if not enabled():
        return value
    total = torch.tensor([value], dtype=torch.float64)
    torch.distributed.all_reduce(total)
    return float(total.item()) / world_size()


def mean_values(values: Mapping[str, float]) -> dict[str, float]:
    """:func:`mean` of every value, in one all-reduce (the same keys, in the same order, on every process)."""
    if not enabled():
        return dict(values)
    total = torch.tensor(list(values.values()), dtype=torch.float64)
    torch.distributed.all_reduce(total)
    return {key: float(v) / world_size() for key, v in zip(values, total.tolist())}


def average_(tensors: Iterable[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its mean over the processes.

    The tensors are flattened into buckets of one device and dtype (at most :data:`BUCKET_ELEMENTS` each)
    and each bucket is all-reduced at once: a few large messages instead of one per tensor.
    """
    if not enabled():
        return
    buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    sizes: dict[tuple[torch.device, torch.dtype], int] = {}
    for tensor in tensors:
        key = (tensor.device, tensor.dtype)
        buckets.setdefault(key, []).append(tensor)
        sizes[key] = sizes.get(key, 0) + tensor.numel()
        if sizes[key] >= BUCKET_ELEMENTS:
            _reduce_bucket(buckets.pop(key))
            sizes.pop(key)
    for bucket in buckets.values():
        _reduce_bucket(bucket)


def _reduce_bucket(bucket: list[torch.Tensor]) -> None:
    flat = torch._utils._flatten_dense_tensors(bucket)
    torch.distributed.all_reduce(flat)
    flat.div_(world_size())
    for tensor, reduced in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
        tensor.copy_(reduced)


def average_gradients(opt: torch.optim.Optimizer) -> None:
    """Average the gradients of ``opt``'s parameters over the processes, between backward and step.

    This is the gradient synchronisation of ``DistributedDataParallel``, done centrally instead of by a
    module wrapper: DDP expects one forward per backward of each wrapped module, while the GAN-style loops
    (ADDA, CycleGAN, GAM, the calibrator, I2I) pass several modules several times per step (a discriminator
    on real and on fake inputs, with and without gradients) and step two or three optimisers. Averaging
    what each optimiser is about to apply fits all of them alike. With mean-reduced losses over equal
    shards, the average is the gradient of the global batch. A parameter without a gradient (not in this
    loss's graph) is left out, as the optimiser skips it; every process takes the same code path, so every
    process leaves out the same ones.
    """
    average_([p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None])


def sync_batchnorm(module: nn.Module) -> None:
    """With several processes on CUDA, turn ``module``'s batch-norm layers (in place) into
    :class:`torch.nn.SyncBatchNorm`, which normalises by the statistics of the global batch rather than of
    this process's shard: training then sees what a single process would.

    SyncBatchNorm only runs on GPUs, so on the CPU each process normalises by its own shard (as
    ``DistributedDataParallel`` without SyncBatchNorm does); :func:`pipeline_lib.training.recompute_batchnorm`
    averages the running statistics afterwards so that every process keeps the same ones. ``module`` is a
    container (a model, a ``ModuleDict``), never a bare batch-norm layer, so the conversion happens in place.
    """
    if enabled() and any(p.is_cuda for p in module.parameters()):
        nn.SyncBatchNorm.convert_sync_batchnorm(module)


def on_main(action: Callable[[], T]) -> T | None:
    """Run ``action`` on rank 0 alone (None elsewhere). A :class:`PipelineError` or ``OSError`` it raises is
    raised on every process, so that all stop with the same one line instead of waiting for rank 0."""
    result, error = None, None
    if is_main():
        try:
            result = action()
        except (PipelineError, OSError) as err:
            error = err
    if enabled():
        shared = [error]
        torch.distributed.broadcast_object_list(shared, src=0)
        error = shared[0]
    if error is not None:
        raise error
    return result
