"""Nearest-neighbour retrieval baselines that learn no code: raw pixels, blurred pixels and PCA.

Used by ``zeroshot_digits.py`` and ``qmul_retrieval.py`` (imported from their folder) to put a floor
under the models' retrieval rows. The queries, the gallery and what counts as relevant are the
``retrieval`` evaluator's (``wynerkit_plugins/evaluators/retrieval_items.py``): the distinct x of the test split
rank the test gallery (a split's ``gallery()`` in category mode, else its distinct y), by cosine
similarity, scored by the same functions (P@K and mAP by class, or acc@K of the true match). Only the
vectors differ: instead of q(z|x) and q(z|y), a picture's own pixels.

- **pixels**: each image as the model sees it (the dataset's tensors), averaged over colour channels,
  resized to the x side's size when the sides differ (bilinear, antialiased), centred and scaled to
  unit length. Cosine similarity of raw pixels.
- **blurred pixels** (``blur`` > 0): the same after a Gaussian blur of ``blur`` pixels, as the
  published QMUL floor does (sigma 4 at 256 px, then 4x down: sigma 1 at 64 px).
- **PCA**: the pixel vectors projected on the first ``components`` principal axes of the *training*
  split's x and y pixel vectors pooled (the test items are never fitted), then cosine.
- **CCA** (with ``blur``; "blurred-pixel-cca"): the best *learned linear* cross-modal code. Blurred
  pixel vectors in the PCA space above, then regularised canonical correlation analysis fitted on the
  training pairs (each side's covariance plus ``CCA_RIDGE`` times its mean variance on the diagonal):
  x and y are projected on their canonical directions, x's scaled by the canonical correlations, then
  cosine. It tells whether the training pairs hold more than the pixels' own similarity does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wynerkit.components import BuildContext
from wynerkit.data.loading import fetch
from wynerkit.interfaces import GallerySplit
from wynerkit.plugins import get_host
from wynerkit.spec.loading import load_spec
from wynerkit_plugins.evaluators.retrieval_items import Mode, Pairing
from wynerkit_plugins.evaluators.retrieval_metrics import accuracies, match_ranks, ranking_scores

BATCH = 512
CCA_RIDGE = 1.0


@dataclass(frozen=True)
class RetrievalSet:
    """The test split's queries (x images), its gallery (y images), their labels and each query's true match."""

    queries: Tensor
    query_labels: Tensor
    gallery: Tensor
    gallery_labels: Tensor
    match: Tensor


def _images(split: Any, positions: Tensor, side: str) -> tuple[Tensor, Tensor]:
    images, labels = [], []
    for chunk in positions.split(BATCH):
        batch = fetch(split, chunk.tolist())
        images.append(batch[side].float())
        labels.append(torch.as_tensor(batch["y_label"]).long())
    return torch.cat(images), torch.cat(labels)


def retrieval_set(test: Any, mode: Mode) -> RetrievalSet:
    """What the ``retrieval`` evaluator ranks on ``test``, as images instead of codes."""
    pairing = Pairing.of(test)
    queries, query_labels = _images(test, pairing.query_items, "x")
    if mode == "category" and isinstance(test, GallerySplit):
        gallery, gallery_labels = test.gallery()
        gallery, gallery_labels = gallery.float(), torch.as_tensor(gallery_labels).long()
    else:
        gallery, gallery_labels = _images(test, pairing.gallery_items, "y")
    return RetrievalSet(queries, query_labels, gallery, gallery_labels, pairing.match)


def _gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    radius = max(1, round(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    return F.conv2d(rows, kernel.view(1, 1, -1, 1))


def pixel_vectors(images: Tensor, size: int, blur: float = 0.0) -> Tensor:
    """``[N, C, H, W]`` images -> ``[N, size*size]`` grey, optionally blurred, centred, unit-length vectors."""
    grey = images.float().mean(dim=1, keepdim=True)
    if grey.shape[-1] != size:
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if blur > 0:
        grey = _gaussian_blur(grey, blur)
    vectors = grey.flatten(1)
    vectors = vectors - vectors.mean(dim=1, keepdim=True)
    return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-8)


def principal_axes(vectors: Tensor, components: int) -> tuple[Tensor, Tensor]:
    """The mean and the first ``components`` principal axes (``[D, k]``) of ``vectors``."""
    mean = vectors.mean(dim=0)
    _, _, vt = torch.linalg.svd(vectors - mean, full_matrices=False)  # exact: no random projection, no seed
    return mean, vt[:components].T


def canonical_projections(x: Tensor, y: Tensor, ridge: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Regularised CCA of paired rows: the means, the x and y directions (``[D, D]``) and the correlations."""
    mx, my = x.mean(dim=0), y.mean(dim=0)
    x, y = x - mx, y - my
    n, d = x.shape
    identity = torch.eye(d)
    cxx = x.T @ x / n + ridge * x.var(dim=0).mean() * identity
    cyy = y.T @ y / n + ridge * y.var(dim=0).mean() * identity
    wx, wy = (torch.linalg.inv(torch.linalg.cholesky(c)) for c in (cxx, cyy))  # whitening: W C W^T = I
    u, correlations, vt = torch.linalg.svd(wx @ (x.T @ y / n) @ wy.T)
    return mx, my, wx.T @ u, wy.T @ vt.T, correlations


def scores(items: RetrievalSet, queries: Tensor, gallery: Tensor, mode: Mode, ks: list[int]) -> dict[str, float]:
    """The evaluator's metrics for these query and gallery vectors: acc@K (instance), or P@K and mAP (category)."""
    if mode == "instance":
        ranks = match_ranks(queries, gallery, items.match)
        return {f"retrieval.acc@{k}": value for k, value in accuracies(ranks, ks).items()}
    ranking = ranking_scores(queries, gallery, items.query_labels, items.gallery_labels, ks)
    metrics = {f"retrieval.p@{k}": ranking.mean_precision(k) for k in ks}
    return metrics | {"retrieval.map": ranking.mean_average_precision()}


def baseline_rows(
    data: Any, mode: Mode, ks: list[int], *, components: int, blur: float = 0.0
) -> dict[str, dict[str, float]]:
    """Metrics of ``pixel-nn``, ``pca-nn`` (and, when ``blur`` > 0, ``blurred-pixel-nn`` and ``blurred-pixel-cca``)."""
    items = retrieval_set(data.split("test"), mode)
    size = items.queries.shape[-1]
    train = data.split("train")
    every = torch.arange(len(train))
    train_images = [_images(train, every, side)[0] for side in ("x", "y")]  # read once, used unblurred and blurred
    mean, axes = principal_axes(torch.cat([pixel_vectors(images, size) for images in train_images]), components)
    query_pixels, gallery_pixels = pixel_vectors(items.queries, size), pixel_vectors(items.gallery, size)
    rows = {
        "pixel-nn": scores(items, query_pixels, gallery_pixels, mode, ks),
        "pca-nn": scores(items, (query_pixels - mean) @ axes, (gallery_pixels - mean) @ axes, mode, ks),
    }
    if blur > 0:
        query_blurred, gallery_blurred = (
            pixel_vectors(images, size, blur) for images in (items.queries, items.gallery)
        )
        rows["blurred-pixel-nn"] = scores(items, query_blurred, gallery_blurred, mode, ks)
        train_x, train_y = (pixel_vectors(images, size, blur) for images in train_images)
        mean, axes = principal_axes(torch.cat([train_x, train_y]), components)
        mx, my, ax, ay, correlations = canonical_projections(
            (train_x - mean) @ axes, (train_y - mean) @ axes, CCA_RIDGE
        )
        query_codes = ((query_blurred - mean) @ axes - mx) @ ax * correlations
        gallery_codes = ((gallery_blurred - mean) @ axes - my) @ ay
        rows["blurred-pixel-cca"] = scores(items, query_codes, gallery_codes, mode, ks)
    counts = {"retrieval.queries": float(len(items.queries)), "retrieval.gallery": float(len(items.gallery))}
    return {model: metrics | counts for model, metrics in rows.items()}


def spec_rows(
    spec_path: Path, dataset: str, mode: Mode, ks: list[int], *, components: int, blur: float = 0.0
) -> list[dict[str, Any]]:
    """``baseline_rows`` on the data of a benchmark spec, as result rows (no seed, no lambda_ci)."""
    host = get_host()
    spec = load_spec(spec_path, host.registry).spec
    data = BuildContext(registry=host.registry, seed=spec.seed).build(spec.data)
    found = baseline_rows(data, mode, ks, components=components, blur=blur)
    return [
        {"dataset": dataset, "model": model, "lambda_ci": None, "seed": None, "status": "finished", **metrics}
        for model, metrics in found.items()
    ]
