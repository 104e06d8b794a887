"""Density-ratio estimation with the NWJ (Nguyen-Wainwright-Jordan) bound on the KL divergence: ``nwj``.

NWJ's variational form KL(p||q) = sup_f E_p[f] - E_q[e^(f-1)] is attained at f = 1 + log p/q.
Writing f = 1 + T, the critic minimises

    loss(T) = -E_p[T] + E_q[e^T] - 1,

whose pointwise minimiser is T = log p/q exactly (the derivative -p + q e^T vanishes there), and
whose minimum is -KL(p||q). So ``log_ratio`` estimates log p/q, and the divergences follow from
it with ``wynerkit.training.estimates`` as for ``adversarial-js``. The two share the network
(``critic_network.CriticNetwork``) and differ only in this loss (and the bound below that keeps
it finite): unlike the logistic loss, which saturates on confidently classified items, NWJ weighs
q's items by e^T, so it keeps learning where the ratio is large, at the price of a
higher-variance exponential term.

Overflow guard: e^T overflows float32 for T > 88 and its gradient dominates a batch long before
that. The head's output is therefore bounded above smoothly,

    T = c - softplus(c - t),    c = ``max_log_ratio``,

which is t itself (within 0.01) for t < c - 5 and never exceeds c. It only scales the loss's
gradient by sigmoid(c - t), so the minimiser stays T = log p/q wherever log p/q < c, and an item
near the bound is still pulled back towards it; a hard clamp would cut the gradient at c. Log-ratios
above c cannot be represented; NWJ could not estimate them from a minibatch anyway, since the
variance of the exponential term grows like e^KL.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from wynerkit import Sample, hookimpl
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.critic_network import CriticNetwork, CriticParams, critic_factory


class NWJParams(CriticParams):
    """Sizes of the critic networks, the instance noise, and the bound on the log-ratio."""

    max_log_ratio: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="smooth upper bound c on the log-ratio, which keeps e^T finite"
    )


def nwj_loss(t_p: Tensor, t_q: Tensor) -> Tensor:
    """The negated NWJ bound -E_p[T] + E_q[e^T] - 1; minimised by T = log p/q, at -KL(p||q)."""
    return -t_p.mean() + t_q.exp().mean() - 1.0


class NWJ(CriticNetwork):
    """NWJ-loss critic heads sharing one (x, y) feature map; a ``wynerkit.RatioEstimator``."""

    component = "nwj"

    def log_ratio(self, head: str, sample: Sample, features: Tensor | None = None) -> Tensor:
        """The head's output bounded smoothly above by ``max_log_ratio``: an estimate of log p/q, [B]."""
        c = self.params.max_log_ratio
        return c - F.softplus(c - super().log_ratio(head, sample, features))

    def critic_loss(self, log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
        """The negated NWJ bound; minimised by log_ratio = log p/q."""
        return nwj_loss(log_ratio_p, log_ratio_q)


make_nwj = critic_factory(
    NWJ, "Density-ratio critics trained on the NWJ (f-divergence) lower bound of the KL divergence."
)


@hookimpl
def wynerkit_register_estimators(register: Register) -> None:
    register("nwj", make_nwj, params=NWJParams)
