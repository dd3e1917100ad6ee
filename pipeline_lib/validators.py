"""Unsupervised validators: scores of a checkpoint that need no target label, to choose checkpoints and settings.

Each takes what a checkpoint's model gives on target training images (class scores ``logits``, ``features``) and,
for some, on held-out source images with their labels; each returns one number where **higher is better**. Musgrave,
Belongie and Lim, "Benchmarking Validation Methods for Unsupervised Domain Adaptation" (2022), compare them across
many checkpoints and tasks; their library, pytorch-adapt, implements most of them. Its release on PyPI (0.0.83)
installs beside the pinned torch but does not import on this Python (its torchmetrics 0.9.3 needs
``pkg_resources``), so they are written here from their papers; ``tests/test_validators.py`` checks each on
hand-made tensors and, where pytorch-adapt imports, against its implementation.

Segmentation gives every pixel a prediction: the prediction-based validators (entropy, IM, BNM) take the pixels as
samples (``pixels_as_samples``), SND and ClassAMI take pooled features per image.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def pixels_as_samples(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) per-pixel class scores as (N * H * W, C) samples; (N, C) is returned as it is."""
    return logits.movedim(1, -1).reshape(-1, logits.shape[1]) if logits.dim() > 2 else logits


def _entropies(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of a probability matrix; 0 log 0 = 0."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(dim=1)


def source_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy on held-out *source* images: the usual choice, blind to the shift ("source val accuracy" in
    Musgrave et al. 2022). Source labels only."""
    return float((logits.argmax(dim=1) == labels).float().mean())


def entropy(logits: torch.Tensor) -> float:
    """Minus the mean prediction entropy on target images (Morerio, Cavazza and Murino, "Minimal-Entropy Correlation
    Alignment", ICLR 2018): confident predictions score high, so a model that predicts one class everywhere scores
    best, which is why it misleads on collapsed models."""
    return -float(_entropies(pixels_as_samples(logits).float().softmax(dim=1)).mean())


def information_maximization(logits: torch.Tensor) -> float:
    """IM: the entropy of the mean prediction minus the mean prediction entropy (Gomes, Krause and Perona,
    "Discriminative Clustering by Regularized Information Maximization", NIPS 2010; as a validator, Musgrave et al.
    2022): confident *and* diverse predictions score high; a collapsed model loses the first term."""
    probs = pixels_as_samples(logits).float().softmax(dim=1)
    return float(_entropies(probs.mean(dim=0, keepdim=True))[0] - _entropies(probs).mean())


def batch_nuclear_norm(logits: torch.Tensor) -> float:
    """BNM: the nuclear norm of the (samples x classes) prediction matrix over the number of samples (Cui et al.,
    "Towards Discriminability and Diversity: Batch Nuclear-norm Maximization under Label Insufficient Situations",
    CVPR 2020): large when predictions are confident and spread over the classes."""
    probs = pixels_as_samples(logits).float().softmax(dim=1)
    return float(torch.linalg.matrix_norm(probs, ord="nuc") / probs.shape[0])


def soft_neighborhood_density(features: torch.Tensor, temperature: float = 0.05, chunk: int = 1000) -> float:
    """SND (Saito et al., "Tune it the Right Way: Unsupervised Validation of Domain Adaptation via Soft Neighborhood
    Density", ICCV 2021): each target sample's cosine similarities to every other sample, divided by
    ``temperature`` (the paper's 0.05) and soft-maxed, and the entropy of that distribution, averaged: high when
    samples sit in dense neighbourhoods. The paper uses the softmax of the class scores as ``features``."""
    x = F.normalize(features.flatten(1).float(), dim=1)
    n = len(x)
    if n < 2:
        raise ValueError("SND needs two samples or more (each one's neighbours are the others)")
    out = []
    for start in range(0, n, chunk):
        sims = x[start:start + chunk] @ x.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -math.inf  # a sample is not its own neighbour
        out.append(_entropies((sims / temperature).softmax(dim=1)))
    return float(torch.cat(out).mean())


def dev_risk(weights: np.ndarray, losses: np.ndarray) -> float:
    """Deep Embedded Validation's risk (You et al., "Towards Accurate Model Selection in Deep Unsupervised Domain
    Adaptation", ICML 2019, eq. 8): the importance-weighted source validation loss with the weights as a control
    variate, mean(w l) + eta mean(w) - eta, eta = -Cov(w l, w) / Var(w). Lower is better."""
    w = np.asarray(weights, float)
    wl = w * np.asarray(losses, float)
    var = np.var(w, ddof=1)
    eta = -np.cov(wl, w, ddof=1)[0, 1] / var if var > 0 else 0.0
    return float(wl.mean() + eta * w.mean() - eta)


def importance_weights(source_features: np.ndarray, target_features: np.ndarray, validation_features: np.ndarray,
                       seed: int = 0) -> np.ndarray:
    """DEV's density ratio p_target / p_source at each source validation sample, from a domain classifier
    (logistic regression on standardised features, scikit-learn) trained to tell source training features from
    target ones. The features are standardised first, as usual before a regularised logistic regression, and the
    fit uses Newton steps with a Cholesky solve (``newton-cholesky``): on LeNet's 500 features of 1,000 + 1,000
    images it converges in 6-9 iterations, 0.3-0.7 s, to within 1-2% of the exact optimum's weights, where L-BFGS
    stopped after 130-260 iterations (1.3-2.6 s) with weights up to 27% off it (demo checkpoints)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([source_features, target_features]).reshape(len(source_features) + len(target_features), -1)
    y = np.r_[np.zeros(len(source_features)), np.ones(len(target_features))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", max_iter=1000,
                                                                         random_state=seed)).fit(x, y)
    p = classifier.predict_proba(validation_features.reshape(len(validation_features), -1))
    return p[:, 1] / np.clip(p[:, 0], 1e-12, None) * len(source_features) / len(target_features)


def deep_embedded_validation(source_features: np.ndarray, target_features: np.ndarray,
                             validation_features: np.ndarray, validation_logits: torch.Tensor,
                             validation_labels: torch.Tensor, seed: int = 0) -> float:
    """DEV as a score: minus :func:`dev_risk` of the per-sample cross-entropy on held-out source images, weighted by
    :func:`importance_weights`. Source labels only."""
    losses = F.cross_entropy(validation_logits.float(), validation_labels, reduction="none").numpy()
    return -dev_risk(importance_weights(source_features, target_features, validation_features, seed), losses)


def class_ami(features: torch.Tensor, logits: torch.Tensor, seed: int = 0) -> float:
    """ClassAMI (Musgrave et al. 2022): k-means of the target features into as many clusters as classes, and the
    adjusted mutual information between those clusters and the predicted classes: high when the classifier's
    decisions follow the features' own structure."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score

    x = features.flatten(1).float().numpy()
    k = logits.shape[1]
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
    return float(adjusted_mutual_info_score(logits.argmax(dim=1).numpy(), clusters))


#: every validator by name, with what it reads: "target" (target logits/features only) or "source" (also held-out
#: source logits and labels); none reads a target label
VALIDATORS = {
    "source_accuracy": "source",
    "entropy": "target",
    "im": "target",
    "bnm": "target",
    "snd": "target",
    "dev": "source",
    "class_ami": "target",
}
