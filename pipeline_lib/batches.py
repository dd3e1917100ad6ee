"""Batches for training and evaluation: seeded shuffling shared out over torchrun's processes, source/target
pairs, fixed-length cycled epochs, and in-order batches of frames that may differ in size."""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, default_collate

from pipeline_lib import distributed
from pipeline_lib.errors import PipelineError


class ShardedBatches(Sampler[list[int]]):
    """This process's share of each global batch: ``sampler``'s indices grouped into batches of ``batch_size``
    exactly as ``DataLoader(batch_size=...)`` groups them (torch's own :class:`BatchSampler`, so the same
    draws from the sampler's generator), then cut into ``world_size`` contiguous equal shares.

    Every process holds a generator seeded alike, so all draw the same permutation and the shares of batch
    k together are the single-process batch k: with mean-reduced losses the averaged gradient is the global
    batch's. One process gets the whole batch, so its batches are today's. ``batch_size`` must be a multiple
    of the process count (a one-line :class:`PipelineError` otherwise); a lone short batch (a dataset smaller
    than one batch) is split as evenly as it goes.
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, drop_last: bool) -> None:
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if batch_size % self.world:
            raise PipelineError(f"batch_size {batch_size} does not split into equal shares for the {self.world} "
                                f"processes of torchrun --nproc_per_node {self.world}: set this stage's batch_size "
                                f"in params.yaml to a multiple of {self.world}, or run a number of processes that "
                                "divides it")
        self.batches = BatchSampler(sampler, batch_size, drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            yield batch[self.rank * len(batch) // self.world:(self.rank + 1) * len(batch) // self.world]

    def __len__(self) -> int:
        return len(self.batches)


def shuffled_loader(dataset: Dataset, batch_size: int, generator: torch.Generator,
                    num_workers: int = 0) -> DataLoader:
    """Seeded shuffling (worker seeds derive from ``generator`` too, so random crops repeat);
    the last short batch is dropped unless it is the only one. Under torchrun, this process's share of
    each batch (:class:`ShardedBatches`); ``batch_size`` is the global batch."""
    batches = ShardedBatches(RandomSampler(dataset, generator=generator), batch_size, len(dataset) > batch_size)
    return DataLoader(dataset, batch_sampler=batches, generator=generator, num_workers=num_workers,
                      collate_fn=_collate, pin_memory=torch.cuda.is_available())


def _collate(items: list) -> Any:
    try:
        return default_collate(items)
    except RuntimeError as err:
        if "stack expects each tensor to be equal size" not in str(err):
            raise
        raise PipelineError("frames of different sizes in one batch: give this stage a crop: [height, width] "
                            "(or max_width) in the segmentation section of params.yaml") from None


def in_order_batches(dataset: Dataset, batch_size: int,
                     num_workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches in dataset order; a batch whose frames differ in size is split
    into runs of equal size (real datasets hold a few odd-sized frames). Never sharded: its readers
    (evaluation, activation statistics, translation) need every item, on every process alike."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=list)
    for items in loader:
        groups: dict[tuple[int, ...], list] = {}
        for item in items:  # (image, label), or (image,) from an unlabelled set
            image, label = item[0], torch.as_tensor(item[1]) if len(item) > 1 else torch.zeros((), dtype=torch.long)
            groups.setdefault((*image.shape, *label.shape), []).append((image, label))
        for group in groups.values():
            yield torch.stack([g[0] for g in group]), torch.stack([g[1] for g in group])


def paired_batches(source: Dataset, target: Dataset, batch_size: int,
                   gen_source: torch.Generator, gen_target: torch.Generator, num_workers: int = 0) -> Iterator[tuple]:
    """One epoch over the source; the target is reshuffled and cycled as often as needed."""
    src = shuffled_loader(source, batch_size, gen_source, num_workers)
    tgt_loader = shuffled_loader(target, batch_size, gen_target, num_workers)
    tgt = iter(tgt_loader)
    for s_batch in src:
        try:
            t_batch = next(tgt)
        except StopIteration:
            tgt = iter(tgt_loader)
            t_batch = next(tgt)
        yield s_batch, t_batch


def cycled_pairs(source: Dataset, target: Dataset, batch_size: int, gen_source: torch.Generator,
                 gen_target: torch.Generator, num_workers: int = 0) -> Iterator[tuple]:
    """Passes of :func:`paired_batches`, one after another, for as long as the caller keeps asking: for a fixed
    number of steps per epoch."""
    while True:
        yielded = False
        for pair in paired_batches(source, target, batch_size, gen_source, gen_target, num_workers):
            yielded = True
            yield pair
        if not yielded:
            return
