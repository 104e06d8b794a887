"""Adversarial density-ratio estimation with the logistic (Jensen-Shannon) loss: ``adversarial-js``.

A critic head T trained to tell samples of p (label 1) from samples of q (label 0) with the
logistic loss is optimal at T = log p/q (the variational form of the Jensen-Shannon divergence).
Its logits then estimate the symmetric KL as E_p[T] - E_q[T] and, for p(x,y,z) against
p(x,y)p(z), the mutual information I(X,Y;Z) as E_p[T] (method notes, "Critic design"); the
objective terms compute those from ``log_ratio`` with ``wynerkit.training.estimates``.

The network (shared (x, y) features, per-head latent embeddings, instance noise) is
``critic_network.CriticNetwork``, shared with ``nwj``; this module adds the loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from wynerkit import hookimpl
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.critic_network import CriticNetwork, CriticParams, critic_factory


class AdversarialJSParams(CriticParams):
    """Sizes of the critic networks and the instance noise."""


def logistic_loss(t_p: Tensor, t_q: Tensor) -> Tensor:
    """Binary cross-entropy on logits with p positive; minimised by T = log p/q."""
    return F.softplus(-t_p).mean() + F.softplus(t_q).mean()


class AdversarialJS(CriticNetwork):
    """Logistic-loss critic heads sharing one (x, y) feature map; a ``wynerkit.RatioEstimator``."""

    component = "adversarial-js"

    def critic_loss(self, log_ratio_p: Tensor, log_ratio_q: Tensor) -> Tensor:
        """Logistic loss with p as the positive class; minimised by T = log p/q."""
        return logistic_loss(log_ratio_p, log_ratio_q)


make_adversarial_js = critic_factory(
    AdversarialJS, "Adversarial density-ratio critics with the logistic (Jensen-Shannon) loss."
)


@hookimpl
def wynerkit_register_estimators(register: Register) -> None:
    register("adversarial-js", make_adversarial_js, params=AdversarialJSParams)
