"""Feature-map regression: adapt a network to a paired, shifted dataset by regressing its own feature maps.

"Semi-supervised domain adaptation by feature-map regression" (the text in
``shared/papers/feature-map-regression.txt``).
H1 is trained with labels on D1. H2 starts as a copy of H1 and is finetuned, without D2's labels, on pairs
(X1, X2 = T(X1)) to minimise sum_l w_l ||F_l(H1, X1) - F_l(H2, X2)||^2 over chosen layers (section 3.1):

- :func:`pipeline_lib.methods.fmr_params.variant_weights`: one post-pooling layer alone (``pool<k>``), or all
  of them with increasing (``inc``: W_inc = [0.2, 0.4, 0.6, 0.8, 0.9]) or decreasing (``dec``) weights
  (4.2.2). On a backbone with other than five such layers W_inc is resampled linearly over its layers (the
  paper is silent).
- :func:`regression_loss`: the weighted sum. ||.||^2 is averaged over a layer's elements by default
  (``reduction: mean``; the paper is silent on scaling, and a sum would let the largest map dominate).
- :func:`regress_features`: the training loop. Each layer's loss reaches only the layers below it: H2 is
  one forward pass, so the gradient of F_l never reaches layers above l, and layers above the deepest
  regressed one get no gradient at all (they stay H1's). H1 runs in eval mode; H2 trains with its dropout
  off (the regression target is deterministic) and batch norm in training mode, re-estimated on D2 at the
  end. The paper gives no optimiser for this step: Adam (digits) or SGD (street scenes), from params.
- :func:`invert_features` (section 3.3): from white noise, SGD on an image against a content loss
  1/2 ||F_l(X) - F_l(X1)||^2 and a Gram-matrix style loss (Gatys et al.'s definitions), both through one
  network: X1 "as the network sees it". The paper sums both over its layers without saying which; here,
  as in Gatys et al., the content is taken at the deepest regressed layer and the style at every one
  (content at a shallow layer rebuilds X1 itself, through any network).
"""

from __future__ import annotations

import copy
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from pipeline_lib.config import DivergenceParams
from pipeline_lib.errors import PipelineError
from pipeline_lib.methods.fmr_params import RegressParams
from pipeline_lib.models.base import TaskModel
from pipeline_lib.runtime import autocast
from pipeline_lib.batches import shuffled_loader
from pipeline_lib.training import (At, Loop, LossGrowth, Series, SeriesPlan, TrainResult, build_optimizer, descend, fit,
                                   fixed_steps, recompute_batchnorm)

def regression_loss(target: dict[str, torch.Tensor], features: dict[str, torch.Tensor], weights: dict[str, float],
                    reduction: str = "mean") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """sum_l w_l ||F_l(H1, X1) - F_l(H2, X2)||^2 (``target``: H1's maps, ``features``: H2's); and each layer's
    unweighted term."""
    parts = {name: F.mse_loss(features[name].float(), target[name].float().detach(), reduction=reduction)
             for name in weights}
    total = sum(weights[name] * parts[name] for name in weights)
    return total, parts  # type: ignore[return-value]


class PairedSet(Dataset):
    """(X1, X2) of two aligned datasets (D2 = T(D1): item i of one is item i of the other, shifted)."""

    def __init__(self, first: Dataset, second: Dataset) -> None:
        if len(first) != len(second):  # type: ignore[arg-type]
            raise PipelineError(f"paired sets differ in length ({len(first)} and {len(second)}): the target must be "  # type: ignore[arg-type]
                                "the source through a shift (data.shifted.<name>.base = the source)")
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.first[index][0], self.second[index][0]


def same_crop(x1: torch.Tensor, x2: torch.Tensor, crop: tuple[int, int] | None, flip: bool,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random crop (and flip) for a whole batch of pairs, the same for both images of a pair."""
    if crop is not None:
        h, w = x1.shape[-2:]
        ch, cw = min(crop[0], h), min(crop[1], w)
        top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        x1, x2 = x1[..., top:top + ch, left:left + cw], x2[..., top:top + ch, left:left + cw]
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        x1, x2 = x1.flip(-1), x2.flip(-1)
    return x1, x2


def _train_without_dropout(model: nn.Module) -> None:
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()


def regress_features(h1: TaskModel, pairs: Dataset, weights: dict[str, float], params: RegressParams,
                     device: torch.device, seed: int, out, resume_key: str | None, desc: str = "fmr",
                     crop: tuple[int, int] | None = None, flip: bool = False,
                     monitor: Callable[[TaskModel], float] | None = None,
                     divergence: DivergenceParams = DivergenceParams(),
                     series: SeriesPlan | None = None) -> tuple[TaskModel, TrainResult]:
    """Finetune a copy of ``h1`` (returned) so that its maps of X2 match ``h1``'s of X1 at ``weights``' layers."""
    h1 = h1.to(device).eval().requires_grad_(False)
    h2 = copy.deepcopy(h1).requires_grad_(True)
    order = [n for n in h2.layer_names if n in weights]
    opt = build_optimizer(params.optimizer, h2.parameters(), params.lr, momentum=params.momentum)
    gen, gen_crop = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    growth = LossGrowth(divergence.loss_growth, f"{desc}: regression loss")
    hint = "lower [segmentation.]fmr.regress.lr in params.yaml"
    per_epoch = fixed_steps(len(pairs), params.batch_size, params.steps_per_epoch)  # type: ignore[arg-type]

    def step(batch: tuple[torch.Tensor, torch.Tensor], at: At) -> dict[str, float]:
        x1, x2 = same_crop(batch[0].to(device), batch[1].to(device), crop, flip, gen_crop)
        with autocast(device):
            with torch.no_grad():
                target = h1.forward_features(x1, order)
            loss, parts = regression_loss(target, h2.forward_features(x2, order), weights, params.reduction)
        descend(opt, loss, at.where, hint, watch=growth)
        return {"loss": loss.item(), **{f"loss_{name}": part.item() for name, part in parts.items()}}

    loop = Loop(desc, params.epochs, per_epoch, lambda: _passes(pairs, params, gen, per_epoch), step,
                params.checkpoint_every, start=lambda: _train_without_dropout(h2),
                monitor=(lambda: monitor(h2)) if monitor else None, postfix=("loss",))
    result = fit(loop, out, resume_key, {"model": h2, "opt": opt, "growth": growth}, {"pairs": gen, "crop": gen_crop},
                 Series.kept(series, out, h2))
    # batch-norm statistics on D2 (the images H2 will see), as training passed them
    recompute_batchnorm(h2, (x2 for _, x2 in shuffled_loader(pairs, params.batch_size, gen, params.num_workers)),
                        device, params.batchnorm_batches)
    return h2.eval(), result


def _passes(pairs: Dataset, params: RegressParams, gen: torch.Generator, count: int) -> Iterator[tuple]:
    """``count`` batches of shuffled passes over ``pairs``, a new pass begun only when a batch is still wanted.

    Each pass first draws one worker seed it does not use (an ``iter`` of the loader): the per-pass progress bar
    of earlier releases did so (``tqdm.auto`` iterates its iterable once when it is made), and keeping the draw
    keeps their results to the bit."""
    made = 0
    while True:
        loader = shuffled_loader(pairs, params.batch_size, gen, params.num_workers)
        iter(loader)
        for batch in loader:
            yield batch
            made += 1
            if made >= count:
                return


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix of (N, C, H, W) maps, normalised by C * H * W (Gatys et al.)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def invert_features(model: TaskModel, images: torch.Tensor, content: list[str], style: list[str], steps: int,
                    lr: float, momentum: float, style_weight: float, seed: int, device: torch.device) -> torch.Tensor:
    """Images that ``model`` sees as it sees ``images``: from white noise, SGD on the content loss at ``content``
    and the Gram style loss at ``style`` (4-D maps). CPU, [-1, 1]."""
    model = model.to(device).eval().requires_grad_(False)
    layers = list(dict.fromkeys([*content, *style]))
    with torch.no_grad():
        target = {k: v.float() for k, v in model.forward_features(images.to(device), layers).items()}
        grams = {k: gram(target[k]) for k in style if target[k].dim() == 4}
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(images.shape, generator=gen) * 2 - 1).to(device).requires_grad_(True)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum)
    for _ in range(steps):
        feats = model.forward_features(x, layers)
        loss = sum(0.5 * (feats[k].float() - target[k]).pow(2).sum() / len(x) for k in content)
        loss = loss + style_weight * sum(F.mse_loss(gram(feats[k].float()), g, reduction="sum") / len(x)
                                         for k, g in grams.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(-1, 1)
    return x.detach().cpu()
