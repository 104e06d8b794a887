"""The ``probe`` evaluator: how linearly the common code z reveals the class (the paper's latent probe).

For each of the three encoders of z a linear classifier (multinomial logistic regression) is fitted
on the codes of training pairs and scored on the codes of test pairs:

- ``probe.z_xy``: z = q(z|x,y) against ``x_label``;
- ``probe.z_x``: z = q(z|x) against ``x_label``;
- ``probe.z_y``: z = q(z|y) against ``y_label``.

Values are test accuracies in [0, 1] (higher is better; chance is about 1 / number of classes).
z_xy reads x's label: on paired digits (y = x + 1 mod 10) both labels name the same class, and a
linear probe on 10 one-vs-rest outputs is blind to relabelling, so either choice gives the same
accuracy there; z_y uses y's own label so that datasets whose labels differ in kind still work.

The fit is deterministic for a given seed: a seeded random subset of at most ``max_train``
training pairs, codes standardised with the training mean and standard deviation, weights
starting at zero, full-batch L-BFGS (strong Wolfe line search) for at most ``iterations`` steps on
the mean cross-entropy plus ``l2`` times the squared weights (which keeps separable codes finite).
It runs on the CPU in float64. Datasets whose items have no labels (``x_label`` / ``y_label``
missing or -1) are refused with an error naming the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, NonNegativeFloat, PositiveInt
from torch import Tensor

from wynerkit import BuildContext, ComponentParams, EvalContext, hookimpl
from wynerkit.data.loading import fetch
from wynerkit.hookspecs import Register
from wynerkit_plugins.shared.evaluated_items import dataset_name

Code = Literal["xy", "x", "y"]
KEYS: Mapping[str, tuple[Code, str]] = {
    "probe.z_xy": ("xy", "x_label"),
    "probe.z_x": ("x", "x_label"),
    "probe.z_y": ("y", "y_label"),
}
"""Each key: which encoder's z it probes, against which label."""
LABELS = ("x_label", "y_label")


class ProbeParams(ComponentParams):
    """How many pairs train the probe, how long it trains, and the encoding batch size."""

    max_train: Annotated[
        PositiveInt, Field(description="training pairs the probe fits (a seeded random subset of the train split)")
    ] = 10000
    max_test: Annotated[
        PositiveInt | None, Field(description="score only the first this many test pairs (None: all)")
    ] = None
    iterations: Annotated[PositiveInt, Field(description="L-BFGS iterations of the full-batch fit")] = 200
    batch_size: Annotated[PositiveInt, Field(description="pairs encoded per forward pass")] = 512
    l2: Annotated[
        NonNegativeFloat, Field(allow_inf_nan=False, description="penalty on the squared weights of the probe")
    ] = 1e-4


class LinearProbe:
    """Multinomial logistic regression on standardised features (float64, CPU)."""

    def __init__(self, features: Tensor, labels: Tensor, classes: int, *, iterations: int, l2: float) -> None:
        features = features.double()
        self.mean = features.mean(0)
        std = features.std(0, unbiased=False)
        self.scale = torch.where(std > 1e-12, std, torch.ones_like(std))  # constant dimensions stay 0
        inputs = self.standardise(features)
        self.weight = torch.zeros(features.shape[1], classes, dtype=torch.float64, requires_grad=True)
        self.bias = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [self.weight, self.bias], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe"
        )

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(self.logits(inputs), labels) + l2 * self.weight.square().sum()
            loss.backward()
            return loss

        with torch.enable_grad():  # evaluators run under no_grad; fitting needs gradients
            optimizer.step(closure)

    def standardise(self, features: Tensor) -> Tensor:
        return (features.double() - self.mean) / self.scale

    def logits(self, standardised: Tensor) -> Tensor:
        return standardised @ self.weight + self.bias

    def accuracy(self, features: Tensor, labels: Tensor) -> float:
        predicted = self.logits(self.standardise(features)).argmax(1)
        return float((predicted == labels).double().mean())


def encode(
    run: EvalContext, split: Any, indices: list[int], batch_size: int
) -> tuple[dict[Code, Tensor], dict[str, Tensor]]:
    """The three codes of the pairs at ``indices`` (CPU) and their labels; unlabelled data is refused."""
    codes: dict[Code, list[Tensor]] = {"xy": [], "x": [], "y": []}
    labels: dict[str, list[Tensor]] = {name: [] for name in LABELS}
    for start in range(0, len(indices), batch_size):
        batch = fetch(split, indices[start : start + batch_size])
        for name in LABELS:
            found = torch.as_tensor(batch[name]).long() if name in batch else None
            if found is None or bool((found < 0).any()):
                what = "no" if found is None else "-1 as"
                raise ValueError(
                    f"probe needs class labels, but dataset {dataset_name(run.data)!r} has unlabelled items "
                    f"({what} {name}); use a labelled dataset or leave probe out of evaluate:"
                )
            labels[name].append(found.cpu())
        x, y = batch["x"].to(run.device), batch["y"].to(run.device)
        codes["xy"].append(run.model.encode_z(x=x, y=y).cpu())
        codes["x"].append(run.model.encode_z(x=x).cpu())
        codes["y"].append(run.model.encode_z(y=y).cpu())
    return {c: torch.cat(t) for c, t in codes.items()}, {n: torch.cat(t) for n, t in labels.items()}


class ProbeEvaluator:
    """Implements ``wynerkit.Evaluator``: linear-probe accuracy of q(z|x,y), q(z|x) and q(z|y)."""

    def __init__(self, params: ProbeParams) -> None:
        self.params = params

    def evaluate(self, run: EvalContext) -> dict[str, float]:
        p = self.params
        train, test = run.data.split("train"), run.data.split("test")
        if len(train) == 0 or len(test) == 0:
            raise ValueError(f"probe needs train and test pairs; dataset {dataset_name(run.data)!r} has an empty split")
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(run.seed))
        chosen = order[: p.max_train].sort().values.tolist()
        train_codes, train_labels = encode(run, train, chosen, p.batch_size)
        test_count = len(test) if p.max_test is None else min(len(test), p.max_test)
        test_codes, test_labels = encode(run, test, list(range(test_count)), p.batch_size)
        results: dict[str, float] = {}
        for key, (code, label) in KEYS.items():
            classes = int(max(train_labels[label].max(), test_labels[label].max())) + 1
            probe = LinearProbe(train_codes[code], train_labels[label], classes, iterations=p.iterations, l2=p.l2)
            results[key] = probe.accuracy(test_codes[code], test_labels[label])
        return results


def make_probe(params: ProbeParams, context: BuildContext) -> ProbeEvaluator:
    """Linear-probe test accuracy of z from q(z|x,y), q(z|x) and q(z|y) (probe.z_xy, probe.z_x, probe.z_y)."""
    del context  # the model, data and seed come with the run
    return ProbeEvaluator(params)


@hookimpl
def wynerkit_register_evaluators(register: Register) -> None:
    """Register the evaluator ``probe``."""
    register("probe", make_probe, params=ProbeParams)
