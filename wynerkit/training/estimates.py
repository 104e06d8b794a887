"""Divergence estimates from a critic's log-ratios: the same formulas serve every estimator.

With ``log_ratio`` approximating log p/q pointwise, the symmetric KL divergence is the mean
log-ratio on p minus the mean on q, and for p(x,y,z) against p(x,y)p(z) the mutual information
I(X,Y;Z) is the mean log-ratio on the joint tuples (method notes, "Objective terms").
"""

from __future__ import annotations

from torch import Tensor


def sym_kl(log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
    """KL(p||q) + KL(q||p) estimated as E_p[log p/q] - E_q[log p/q]."""
    return log_ratio_p.mean() - log_ratio_q.mean()


def mutual_information(log_ratio_joint: Tensor) -> Tensor:
    """I(X,Y;Z) estimated as E[log p(x,y,z) / (p(x,y) p(z))] over the joint tuples."""
    return log_ratio_joint.mean()


def accuracy(log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
    """Fraction of items a critic classifies correctly: log-ratio above 0 on p, at most 0 on q."""
    right = (log_ratio_p > 0).float().sum() + (log_ratio_q <= 0).float().sum()
    return right / (log_ratio_p.numel() + log_ratio_q.numel())
