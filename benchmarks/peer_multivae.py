"""Peer benchmark: MultiVae's JMVAE and MMVAE on wynerkit's add-one pairs, scored by wynerkit's coherence.

What it measures. Two published multimodal VAEs, as implemented by the MultiVae library (not by
wynerkit), are trained on exactly the pairs wynerkit's dataset ``mnist-syndigits`` (``source: full``:
full MNIST from the data root x SynDigits, the generated stand-in for SVHN; add-one pairing; seed 0)
gives, in the batch order wynerkit's trainer uses (``wynerkit.data.loading.epoch_batches``, seed 0,
batches of 64). At each requested step count the model is scored with the definitions and the
cached digit classifiers of wynerkit's ``coherence`` evaluator (``wynerkit_plugins/evaluators/coherence.py``):

- ``coherence.x2y``: one sample y ~ p(y|x) per test pair (z ~ q(z|x), y = the decoder's mean);
  coherent iff the y classifier reads the paired y's true label. ``coherence.y2x`` likewise.
- ``coherence.joint``: ``--joint-samples`` pairs decoded from the prior (default 16,384, the
  evaluator's default); coherent iff label(y) == (label(x) + 1) mod 10.

The numbers are computed by ``coherence_from_labels`` / ``joint_coherence_from_labels``. Settings
(the MMVAE paper's MNIST-SVHN ones, with MultiVae's networks): latent dim 20; MNIST: MultiVae's MLP
encoder / decoder with one hidden layer of 512 units (the paper has 400); SynDigits: MultiVae's
``Encoder_VAE_SVHN`` / ``Decoder_VAE_SVHN`` (the paper's 4x4 convolutions 32-64-128); Laplace
likelihoods of scale 0.75 on images mapped from [-1, 1] to [0, 1], the MNIST term scaled by
3*32*32 / (28*28) (MultiVae's likelihood rescaling); Adam (amsgrad) lr 1e-3, batch 64, seed 0, fp32.
JMVAE: alpha 0.1, KL annealing over MultiVae's default 10 warm-up epochs (epoch = 1 + step //
steps per epoch, as MultiVae's trainer counts them), MultiVae's default joint encoder. MMVAE:
``--mmvae-k`` importance samples (default 1), DReG loss, Laplace prior and posteriors with a learnt
prior scale. Generated images are mapped back to [-1, 1] for wynerkit's classifiers. Sampling at
evaluation draws from torch's and numpy's global RNGs seeded with the run seed inside a forked RNG
state, so evaluating at 1,400 steps leaves the training that continues to 4,200 unchanged.

Writes ``benchmarks/results/peers.json`` (rows keyed by model, steps and seed; ``--update`` keeps
the rows of other keys) and ``benchmarks/results/peers.md``. ``wall_s`` is the training time up to
that step (evaluations excluded), ``eval_s`` the time of that evaluation.

Install the peer next to the CPU torch without letting pip touch torch (MultiVae 1.0.3 and pythae
0.1.2 are pure Python; the rest of MultiVae's requirements are wynerkit's or pure Python)::

    pip install --no-deps multivae==1.0.3 pythae==0.1.2
    pip install nltk tqdm imageio torchmetrics cloudpickle scikit-learn pandas

(``pip install torch==2.13.0 -e ".[peers]"`` works as well but also installs PyPI's torchvision, a
CUDA build whose operators do not load with the CPU torch.) MultiVae imports torchvision at import
time for its datasets and trainer, none of which this script uses; when torchvision cannot be
imported, a placeholder package stands in for it and any use of it raises.

Run it as below. On the 2-core development machine, shared with other work, one torch thread, JMVAE
trained 1,400 steps in 731 s and 4,200 in 2,709 s (plus 60-90 s per evaluation); MMVAE (K=1) takes
about 1.6x as long per step. Training the two digit classifiers the first time adds about 6 minutes::

    WYNERKIT_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/peer_multivae.py \\
        --models jmvae,mmvae --steps 1400,4200 [--update] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wynerkit.atomic import write_json_atomic, write_text_atomic
from wynerkit.components import BuildContext
from wynerkit.data.loading import epoch_batches, fetch
from wynerkit.data_root import resolve_data_root
from wynerkit.interfaces import DatasetProvider
from wynerkit.plugins import get_host
from wynerkit.spec.models import SpecBuilder
from wynerkit_plugins.evaluators.coherence import (
    CoherenceParams,
    coherence_from_labels,
    joint_coherence_from_labels,
)
from wynerkit_plugins.shared.digit_classifier import DigitClassifier, chunks, dataset_offset, digit_classifiers
from wynerkit_plugins.shared.evaluated_items import chosen_positions

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNG = "mnist-syndigits-full"
DATA_SPEC = {"name": "mnist-syndigits", "source": "full"}
MODELS = ("jmvae", "mmvae")
LATENT = 20
LEARNING_RATE = 1e-3
BATCH = 64
LAPLACE_SCALE = 0.75
JMVAE_ALPHA = 0.1
JMVAE_WARMUP_EPOCHS = 10
EVAL_BATCH = 500
QUICK_RESULTS = ROOT / "sweeps" / "peers-quick"
"""Where a ``--quick`` smoke run (20 steps, 500 test pairs, 1,000 joint samples) writes, unless told."""
MODALITIES = {"x": (1, 28, 28), "y": (3, 32, 32)}


# --- MultiVae, and a placeholder for its import-time torchvision use --------------------------------


class _TorchvisionUnavailable:
    """Stands for every torchvision name: it can be named and instantiated (MultiVae does both at import
    time, e.g. ``transform=ToTensor()`` as a default argument) but calling or reading from it raises."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{type(self).__name__}: torchvision is a placeholder here; this benchmark does not use it")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"{type(self).__name__}.{name}: torchvision is a placeholder here")


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (_TorchvisionUnavailable,), {"__module__": self.__name__})


class _TorchvisionPlaceholder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``torchvision`` and every ``torchvision.*`` module as a ``_PlaceholderModule``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def provide_torchvision() -> str:
    """The real torchvision when it imports, else the placeholder; says which."""
    try:
        import torchvision
    except (ImportError, RuntimeError, OSError) as error:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.meta_path.insert(0, _TorchvisionPlaceholder())
        return f"placeholder (torchvision did not import: {type(error).__name__})"
    return f"torchvision {torchvision.__version__}"


def make_model(kind: str, mmvae_k: int) -> nn.Module:
    """A MultiVae JMVAE or MMVAE with the MMVAE paper's MNIST-SVHN networks (MultiVae's versions)."""
    from multivae.models import JMVAE, MMVAE, JMVAEConfig, MMVAEConfig
    from multivae.models.base import BaseAEConfig
    from multivae.models.nn.default_architectures import Decoder_AE_MLP, Encoder_VAE_MLP
    from multivae.models.nn.svhn import Decoder_VAE_SVHN, Encoder_VAE_SVHN

    shape = {name: BaseAEConfig(input_dim=dims, latent_dim=LATENT) for name, dims in MODALITIES.items()}
    encoders = {"x": Encoder_VAE_MLP(shape["x"], n_hidden=0), "y": Encoder_VAE_SVHN(shape["y"])}
    decoders = {"x": Decoder_AE_MLP(shape["x"]), "y": Decoder_VAE_SVHN(shape["y"])}
    common: dict[str, Any] = {
        "n_modalities": 2,
        "latent_dim": LATENT,
        "input_dims": dict(MODALITIES),
        "uses_likelihood_rescaling": True,
        "decoders_dist": {"x": "laplace", "y": "laplace"},
        "decoder_dist_params": {"x": {"scale": LAPLACE_SCALE}, "y": {"scale": LAPLACE_SCALE}},
    }
    model: nn.Module
    if kind == "jmvae":
        config = JMVAEConfig(**common, alpha=JMVAE_ALPHA, warmup=JMVAE_WARMUP_EPOCHS)
        model = JMVAE(config, encoders, decoders)
    elif kind == "mmvae":
        config = MMVAEConfig(**common, K=mmvae_k, prior_and_posterior_dist="laplace_with_softmax", learn_prior=True)
        model = MMVAE(config, encoders, decoders)
    else:
        raise ValueError(f"unknown model {kind!r}; choose from {', '.join(MODELS)}")
    model.device = torch.device("cpu")
    return model


def model_settings(kind: str, model: nn.Module, mmvae_k: int, torchvision: str) -> dict[str, Any]:
    """What a row was trained with, for the results file."""
    settings: dict[str, Any] = {
        "latent": LATENT,
        "optimizer": "Adam(amsgrad=True)",
        "lr": LEARNING_RATE,
        "networks": {
            "x": "MultiVae Encoder_VAE_MLP(n_hidden=0) / Decoder_AE_MLP: 784-512-20 / 20-512-784, sigmoid",
            "y": "MultiVae Encoder_VAE_SVHN / Decoder_VAE_SVHN: 4x4 convs 32-64-128 (MMVAE paper), sigmoid",
        },
        "likelihoods": f"Laplace, scale {LAPLACE_SCALE}, on [0, 1] images",
        "rescale_factors": {k: float(v) for k, v in model.rescale_factors.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": "wynerkit mnist-syndigits, source full, seed 0: train split in epoch_batches order (seed 0); "
        "test split for the conditional coherences",
        "torchvision": torchvision,
    }
    if kind == "jmvae":
        settings |= {"alpha": JMVAE_ALPHA, "warmup_epochs": JMVAE_WARMUP_EPOCHS, "joint_encoder": "MultiVae default"}
    else:
        settings |= {"K": mmvae_k, "loss": "dreg_looser", "prior_and_posterior": "laplace_with_softmax"}
    return settings


# --- data ---------------------------------------------------------------------------------------------


def build_dataset(seed: int) -> DatasetProvider:
    """``mnist-syndigits`` (full MNIST) built through the plugin registry, as a spec's ``data:`` entry is."""
    registry = get_host().registry
    component = registry.get("dataset", DATA_SPEC["name"])
    spec = SpecBuilder(registry).variant(component).model_validate(DATA_SPEC)
    return BuildContext(registry=registry, seed=seed, data_root=resolve_data_root()).build(spec)


def to_unit(images: Tensor) -> Tensor:
    """wynerkit's [-1, 1] images -> MultiVae's [0, 1]."""
    return (images + 1) / 2


def from_unit(images: Tensor) -> Tensor:
    """MultiVae's [0, 1] decoder means -> wynerkit's [-1, 1]."""
    return images.clamp(0, 1) * 2 - 1


def multimodal(x: Tensor | None = None, y: Tensor | None = None) -> Any:
    """A MultiVae input batch (``DatasetOutput(data={...})``) of the given sides, in [0, 1]."""
    from pythae.data.datasets import DatasetOutput

    data = {name: to_unit(t) for name, t in (("x", x), ("y", y)) if t is not None}
    return DatasetOutput(data=data)


def training_batches(split: Any, seed: int) -> Iterator[tuple[int, list[int]]]:
    """(epoch, indices) of every training batch, epoch after epoch, as wynerkit's trainer draws them."""
    epoch = 0
    while True:
        for indices in epoch_batches(split, BATCH, seed, epoch):
            yield epoch, indices
        epoch += 1


# --- scoring ------------------------------------------------------------------------------------------


@contextmanager
def seeded_sampling(seed: int) -> Iterator[None]:
    """torch's and numpy's global RNGs seeded for the block, then restored (training goes on unchanged)."""
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)


def batch_sizes(total: int) -> list[int]:
    """Evaluation batches of ``EVAL_BATCH`` items, none of a single item (MultiVae's SVHN encoder squeezes
    a batch of one to a vector, and its prior sampler draws one sample without a batch dimension)."""
    if total < 2:
        raise ValueError(f"need at least 2 items to evaluate, got {total}")
    sizes = list(chunks(total, EVAL_BATCH))
    if sizes[-1] == 1:
        sizes[-2:] = [sizes[-2] - 1, 2]
    return sizes


@torch.no_grad()
def conditional(model: Any, source: str, target: str, images: Tensor) -> Tensor:
    """One sample per item: z ~ q(z|source), then the target decoder's mean, in [-1, 1]."""
    inputs = multimodal(**{source: images})
    return from_unit(model.predict(inputs, cond_mod=[source], gen_mod=[target])[target])


@torch.no_grad()
def joint(model: Any, n: int) -> tuple[Tensor, Tensor]:
    """``n`` pairs decoded from the prior, in [-1, 1]."""
    z = model.generate_from_prior(n)
    decoded = model.decode(z, ["x", "y"])
    return from_unit(decoded["x"]), from_unit(decoded["y"])


def score(
    model: Any,
    data: DatasetProvider,
    judges: dict[str, DigitClassifier],
    *,
    offset: int,
    seed: int,
    max_test_pairs: int | None,
    joint_samples: int,
) -> dict[str, float]:
    """The coherence evaluator's three numbers for a MultiVae model."""
    model.eval()
    test = data.split("test")
    reads: dict[str, tuple[list[Tensor], list[Tensor]]] = {"x2y": ([], []), "y2x": ([], [])}
    joint_reads: tuple[list[Tensor], list[Tensor]] = ([], [])
    with seeded_sampling(seed):
        positions_all = chosen_positions(len(test), max_test_pairs, seed)
        for positions in positions_all.split(batch_sizes(len(positions_all))):
            batch = fetch(test, positions.tolist())
            for key, source, target in (("x2y", "x", "y"), ("y2x", "y", "x")):
                made = conditional(model, source, target, batch[source])
                reads[key][0].append(judges[target].predict(made).cpu())
                reads[key][1].append(torch.as_tensor(batch[f"{target}_label"]).long())
        for size in batch_sizes(joint_samples):
            x, y = joint(model, size)
            joint_reads[0].append(judges["x"].predict(x).cpu())
            joint_reads[1].append(judges["y"].predict(y).cpu())
    model.train()
    result = {
        f"coherence.{key}": coherence_from_labels(torch.cat(read), torch.cat(true))
        for key, (read, true) in reads.items()
    }
    result["coherence.joint"] = joint_coherence_from_labels(
        torch.cat(joint_reads[0]), torch.cat(joint_reads[1]), offset
    )
    return result


# --- training -----------------------------------------------------------------------------------------


def train_and_score(
    kind: str,
    data: DatasetProvider,
    judges: dict[str, DigitClassifier],
    args: argparse.Namespace,
    torchvision: str,
) -> list[dict[str, Any]]:
    """Train one model to the last of ``args.steps``, scoring it at each; one row per step count."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = make_model(kind, args.mmvae_k)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, amsgrad=True)
    train = data.split("train")
    steps_per_epoch = len(epoch_batches(train, BATCH, args.seed, 0))
    offset = dataset_offset(data, None)
    settings = model_settings(kind, model, args.mmvae_k, torchvision) | {
        "steps_per_epoch": steps_per_epoch,
        "train_pairs": len(train),
        "test_pairs_scored": min(len(data.split("test")), args.max_test_pairs or len(data.split("test"))),
        "joint_samples": args.joint_samples,
        "classifier_test_accuracy": {side: judge.test_accuracy for side, judge in judges.items()},
    }
    peer = f"multivae {importlib.metadata.version('multivae')}"
    rows, step, trained_s = [], 0, 0.0
    batches = training_batches(train, args.seed)
    for target in sorted(args.steps):
        started = time.perf_counter()
        while step < target:
            epoch, indices = next(batches)
            batch = fetch(train, indices)
            output = model(multimodal(batch["x"], batch["y"]), epoch=epoch + 1)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            optimizer.step()
            step += 1
            if not torch.isfinite(output.loss):
                raise FloatingPointError(f"{kind}: loss {float(output.loss)} at step {step}")
            if step % 200 == 0:
                seconds = trained_s + time.perf_counter() - started
                print(f"{kind}: step {step} loss {output.loss.item():.2f} ({seconds:.0f} s)", flush=True)
        trained_s += time.perf_counter() - started
        started = time.perf_counter()
        metrics = score(
            model,
            data,
            judges,
            offset=offset,
            seed=args.seed,
            max_test_pairs=args.max_test_pairs,
            joint_samples=args.joint_samples,
        )
        eval_s = time.perf_counter() - started
        row = {
            "rung": RUNG,
            "model": kind,
            "lambda_ci": None,
            "seed": args.seed,
            "steps": step,
            "batch": BATCH,
            "precision": "fp32",
            "wall_s": round(trained_s, 1),
            "eval_s": round(eval_s, 1),
            **{key: round(value, 4) for key, value in sorted(metrics.items())},
            "peer": peer,
            "settings": settings | ({"quick": True} if args.quick else {}),
        }
        print(json.dumps({k: v for k, v in row.items() if k != "settings"}), flush=True)
        rows.append(row)
    return rows


# --- results ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    model_name = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), None
    )
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "lscpu_model_name": model_name,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["model"], row["steps"], row["seed"]


def merge(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows whose (model, steps, seed) ``new`` does not have, then ``new``; sorted by key."""
    replaced = {row_key(row) for row in new}
    return sorted([row for row in old if row_key(row) not in replaced] + new, key=row_key)


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "# Peer models (MultiVae) on wynerkit's add-one pairs",
        "",
        "Full MNIST x SynDigits (a generated stand-in for SVHN), add-one pairing; scored with wynerkit's coherence "
        "definitions and digit classifiers. Written by `benchmarks/peer_multivae.py`.",
        "",
        "| rung | model | seed | steps | batch | coherence.x2y | coherence.y2x | coherence.joint | train s | peer |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['rung']} | {r['model']} | {r['seed']} | {r['steps']} | {r['batch']} | {r['coherence.x2y']:.3f} "
            f"| {r['coherence.y2x']:.3f} | {r['coherence.joint']:.3f} | {r['wall_s']:.0f} | {r['peer']} |"
        )
    return "\n".join(lines) + "\n"


def write_results(directory: Path, rows: list[dict[str, Any]], update: bool) -> None:
    path = directory / "peers.json"
    kept = json.loads(path.read_text())["rows"] if update and path.is_file() else []
    rows = merge(kept, rows)
    write_json_atomic(path, {"machine": machine(), "rows": rows})
    write_text_atomic(directory / "peers.md", markdown(rows))
    print(f"wrote {path} and {directory / 'peers.md'}", flush=True)


def at_least_two(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"need at least 2, got {value}")
    return value


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers separated by commas, got {text!r}")
    return values


def model_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"choose models from {', '.join(MODELS)}; got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=model_list, default=list(MODELS), help="comma-separated: jmvae,mmvae")
    parser.add_argument("--steps", type=int_list, default=[1400, 4200], help="optimizer steps to score at")
    parser.add_argument("--seed", type=int, default=0, help="data, initialisation, batch order and sampling seed")
    parser.add_argument("--max-test-pairs", type=at_least_two, default=None, help="score a seeded subset (default all)")
    parser.add_argument("--joint-samples", type=at_least_two, default=CoherenceParams().joint_samples)
    parser.add_argument("--mmvae-k", type=int, default=1, help="MMVAE importance samples K")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 steps, 500 test pairs, 1,000 joint samples")
    parser.add_argument("--update", action="store_true", help="keep rows of other (model, steps, seed) in peers.json")
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"where peers.json and peers.md go (default {RESULTS}; --quick: {QUICK_RESULTS})",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.max_test_pairs, args.joint_samples = [20], 500, 1000
    args.results = args.results or (QUICK_RESULTS if args.quick else RESULTS)
    torch.set_num_threads(1)
    torchvision = provide_torchvision()
    data = build_dataset(args.seed)
    judges = digit_classifiers(data, CoherenceParams(), data_root=resolve_data_root(), device=torch.device("cpu"))
    rows = []
    for kind in args.models:
        rows += train_and_score(kind, data, judges, args, torchvision)
        write_results(args.results, rows, args.update)  # after each model: a later failure keeps these
    return 0


if __name__ == "__main__":
    sys.exit(main())
