"""I2IAdapt Fig. 3: a 2-D embedding (t-SNE or PCA) of the encoder's codes of source and target test images, for
no adaptation, translation without the feature critic and the full model (the sets the experiment reports)."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pipeline_lib.cli import experiment, run_stage, stage_parser
from pipeline_lib.config import Params
from pipeline_lib.domains.loading import sample_images
from pipeline_lib.domains.resolve import resolve_domain
from pipeline_lib.methods.i2i_spec import ROWS, embedding_png, embedding_sets, i2i_model, row_name
from pipeline_lib.models.i2i import load_i2i_model
from pipeline_lib.plots import embedding_plot
from pipeline_lib.registry import Experiment

#: at most this many points per domain (segmentation codes give one point per location)
MAX_POINTS = 1500


def codes(model: torch.nn.Module, images: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """The encoder's codes, one row per image (vectors) or per location (feature maps), up to MAX_POINTS."""
    with torch.no_grad():
        z = model.eval().forward_features(images, [model.encoder_layer])[model.encoder_layer].float()
    z = z.flatten(1) if z.dim() == 2 else z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    if len(z) > MAX_POINTS:
        z = z[torch.randperm(len(z), generator=generator)[:MAX_POINTS]]
    return z.numpy()


def embed(points: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA
        return PCA(n_components=2, random_state=seed).fit_transform(points)
    from sklearn.manifold import TSNE
    return TSNE(n_components=2, init="pca", random_state=seed,
                perplexity=min(30.0, len(points) / 4)).fit_transform(points)


def main(args: argparse.Namespace, params: Params) -> None:
    exp = experiment(params, args.experiment)
    exp = Experiment(params, args.experiment)
    cfg = params.section("i2i", exp.backbone)
    backbone = params.backbones[exp.backbone]
    src, tgt = resolve_domain(params, exp.source), resolve_domain(params, exp.target)
    xs = sample_images(src, backbone, cfg.embedding_points, cfg.max_width)
    xt = sample_images(tgt, backbone, cfg.embedding_points, cfg.max_width)
    panels = []
    for set_name in embedding_sets(exp):
        model, _ = load_i2i_model(i2i_model(args.experiment, set_name, args.seed), backbone)
        gen = torch.Generator().manual_seed(args.seed)
        zs, zt = codes(model, xs, gen), codes(model, xt, gen)
        points = embed(np.concatenate([zs, zt]), cfg.embedding_method, args.seed)
        is_source = np.arange(len(points)) < len(zs)
        panels.append((ROWS[row_name(set_name)].label, points, is_source))
    out = embedding_png(args.experiment, args.seed)
    embedding_plot(panels, out, f"{args.experiment}: encoder codes, {cfg.embedding_method} "
                   f"(red source, blue target test images), seed {args.seed}")
    print(f"embedding of {len(panels)} model(s) -> {out}")


if __name__ == "__main__":
    raise SystemExit(run_stage(stage_parser(__doc__, experiment=True, seed=True), main))
