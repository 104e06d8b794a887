"""Training throughput of one wynerkit iteration: pairs/s, FLOPs, achieved GFLOP/s, MFU and memory.

For each size preset (``cpu``, ``paper``), model (the variational Wyner model with the paper's
MNIST-SVHN objective, the same model with the zero-shot SBIR objective, IIAE), batch (64, 256),
precision (``fp32``; ``bf16`` = ``train.precision: bf16`` autocast) and execution switch (``plain``;
``channels_last`` = ``train.channels_last: true``; ``compile`` = ``train.compile: true``; each measured
on its own, or joined with ``+``; the ablation ``no_reuse`` turns the model's feature reuse off) it
builds the run's trainer from a spec, takes real MNIST x SynDigits training batches (embedded data, no
download) and times ``Trainer.iteration`` (one critic update and one generator update, exactly what
``wynerkit run`` does per step, without logging or checkpoints):

- ``pairs_per_s``: batch x iterations / seconds, after warm-up iterations;
- ``gflop_per_iter``: matmul and convolution FLOPs of one iteration, forward and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add; compiled rows count an eager
  iteration, as compiled kernels bypass the counter: the arithmetic is the same);
- ``peak_gflops``: the matmul peak of that precision, measured in the same process right before the
  row (best of several 2048 x 2048 products in fp32 or bf16);
- ``mfu``: achieved GFLOP/s (``gflop_per_iter`` x iterations / seconds) over ``peak_gflops``;
- ``peak_mem_mb``: on CPU the peak resident memory of the row's process (each row runs in a fresh
  one) beyond what importing torch and wynerkit took: data, networks, optimiser state and the
  iterations' activations; on CUDA ``torch.cuda.max_memory_allocated``.

Writes ``benchmarks/results/throughput.json``: ``{"device", "settings", "rows": [{"preset", "model",
"batch", "precision", "switch", "pairs_per_s", "gflop_per_iter", "peak_gflops", "mfu", "peak_mem_mb", ...}]}``
and ``throughput.png``. Run on an otherwise idle machine:

    python benchmarks/throughput.py [--presets cpu,paper] [--models ...] [--batches 64,256]
        [--precisions fp32,bf16] [--switches plain,channels_last,compile] [--min-seconds 8]
        [--warmup 2] [--out benchmarks/results] [--update] [--emulated-too]

``--update`` re-measures the rows asked for and keeps every other row of an existing throughput.json
(each row records its own ``warmup_iterations`` and ``min_seconds``); ``--emulated-too`` measures bf16
rows even where bf16 is emulated, which are otherwise recorded under ``skipped`` with the reason.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from wynerkit.atomic import write_text_atomic
from wynerkit.data.loading import as_sample, epoch_batches, fetch
from wynerkit.plugins import PluginHost, discover
from wynerkit.spec.models import build_run_spec_model
from wynerkit.training.assembly import assemble
from wynerkit.training.trainer import Trainer

ROOT = Path(__file__).parent.parent
PAPER_TERMS = {
    "D_joint": 1, "D_x2y": 1, "D_y2x": 1, "I_joint": 1, "I_x2y": 1, "I_y2x": 1,
    "R_xy2x": 1, "R_xy2y": 1, "R_x2y": 1, "R_y2x": 1,
}  # fmt: skip
ZS_TERMS = {
    "D_x2y": 1,
    "D_y2x": 1,
    "D_cross": 1,
    "I_x2y": 1,
    "I_y2x": 1,
    "R_x2y": 1,
    "R_y2x": 1,
    "R_x2x": 1,
    "R_y2y": 1,
}
MODELS: dict[str, dict[str, Any]] = {
    "wyner-mnist-svhn": {"model": "variational-wyner", "objective": {"lambda_ci": 1.0, "terms": PAPER_TERMS}},
    "wyner-zs-sbir": {
        "model": "variational-wyner",
        "objective": {"lambda_ci": 0.1, "lambda_rec": 8.0, "terms": ZS_TERMS},
    },
    "iiae": {"model": "iiae", "objective": {"terms": {"IIAE": 1}}},
}
ESTIMATORS = {  # the critics of specs/paper/mnist-syndigits-addone.yaml and specs/quickstart.yaml
    "paper": {"name": "adversarial-js", "hidden": 512, "embed": 512, "instance_noise": 0.25, "spectral_norm": True},
    "cpu": {"name": "adversarial-js", "hidden": 256, "embed": 128, "instance_noise": 0.25},
}
PEAK_SIDE = 2048
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
EMULATED_SHARE = 0.1
"""bf16 counts as emulated when its matmul peak is below this share of fp32's (no avx512_bf16 / AMX)."""
SKIPPED_WHEN_EMULATED = ("paper",)
"""Presets whose bf16 rows are skipped (and recorded as skipped) where bf16 is emulated."""


SWITCHES = ("channels_last", "compile")
"""The boolean ``train`` switches a row's ``switch`` may name (``plain``: none; ``a+b``: both)."""
NO_REUSE = "no_reuse"
"""An ablation a row's switch may name too: the model encodes every use of a batch afresh (its
``reusing_features`` capability turned off), to measure what feature reuse saves."""


def skip_reason(preset: str, precision: str, switch: str, peaks: dict[str, float]) -> str | None:
    """Why a bf16 row is not measured where bf16 is emulated (None: measure it)."""
    if precision != "bf16":
        return None
    emulated = f"bf16 matmul is emulated here ({peaks['bf16']:.1f} GFLOP/s against {peaks['fp32']:.0f} in fp32)"
    if preset in SKIPPED_WHEN_EMULATED:
        return f"{emulated}: one iteration would take minutes"
    if switch != "plain":
        return f"{emulated}: the switches are measured in fp32"
    return None


def switch_settings(switch: str) -> dict[str, bool]:
    """The ``train`` fields of a row's switch, e.g. ``channels_last+compile`` -> both true."""
    named = set() if switch == "plain" else set(switch.split("+"))
    unknown = named - {*SWITCHES, NO_REUSE}
    if unknown:
        known = ", ".join((*SWITCHES, NO_REUSE))
        raise SystemExit(f"--switches: unknown switch(es) {sorted(unknown)}; use plain, {known} or a+b")
    return {name: name in named for name in SWITCHES}


def spec_for(preset: str, model: str, batch: int, precision: str, switch: str = "plain") -> dict[str, Any]:
    """The paper's add-one setting (latent 16, 8, 8; L1) with one preset, model, batch, precision and switch."""
    chosen = MODELS[model]
    x = {"name": "image", "channels": 1, "height": 28, "preset": preset, "loss": "l1"}
    if preset == "paper":
        x |= {"canvas": 32, "fit": "resize"}
    return {
        "name": f"throughput-{preset}-{model}",
        "seed": 0,
        "data": {"name": "mnist-syndigits", "source": "embedded"},
        "model": {
            "name": chosen["model"],
            "latent": {"z": 16, "u": 8, "v": 8},
            "x": x,
            "y": {"name": "image", "channels": 3, "height": 32, "preset": preset, "loss": "l1"},
        },
        "estimator": None if chosen["model"] == "iiae" else ESTIMATORS[preset],
        "objective": chosen["objective"],
        "train": {
            "max_steps": 10**6,
            "batch_size": batch,
            "precision": precision,
            "device": "auto",
            **switch_settings(switch),
        },
    }


def matmul_peak(dtype: torch.dtype, device: torch.device, repeats: int = 5, round_seconds: float = 0.25) -> float:
    """GFLOP/s of the best of ``repeats`` timed rounds of 2048 x 2048 matrix products in ``dtype``.

    A round repeats the product for about ``round_seconds`` (one product at least), so a precision the
    hardware only emulates (bf16 without avx512_bf16 / AMX: about 1 GFLOP/s) is measured in seconds too.
    """
    a = torch.randn(PEAK_SIDE, PEAK_SIDE, device=device).to(dtype)
    b = torch.randn(PEAK_SIDE, PEAK_SIDE, device=device).to(dtype)
    side = PEAK_SIDE
    sync(device)
    started = time.perf_counter()
    torch.mm(a[:256, :256], b[:256, :256])  # a small warm-up product sizes the rounds
    sync(device)
    if time.perf_counter() - started > 0.01:  # emulated: measure on 512 x 512 (the rate is size-independent)
        side, a, b = 512, a[:512, :512].contiguous(), b[:512, :512].contiguous()
    best = 0.0
    for _ in range(repeats + 1):  # the first round warms up
        products, started = 0, time.perf_counter()
        while products == 0 or time.perf_counter() - started < round_seconds:
            torch.mm(a, b)
            sync(device)
            products += 1
        best = max(best, 2 * side**3 * products / (time.perf_counter() - started) / 1e9)
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def high_water_mb() -> float:
    """This process's peak resident memory so far (Linux ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(
    host: PluginHost, spec: dict[str, Any], min_seconds: float, warmup: int, reuse: bool = True
) -> dict[str, Any]:
    """Time, count and size one row's iterations (``reuse=False``: the model's feature reuse off)."""
    validated = build_run_spec_model(host.registry).model_validate(spec)
    imported = high_water_mb()  # wynerkit and torch loaded, nothing of the row built yet
    parts = assemble(validated, host.registry)
    if not reuse:
        parts.model.reusing_features = None  # the trainer then encodes every use of a batch afresh
    device = parts.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(parts, Path(run_dir))
        split = parts.data.split("train")
        batches = [
            as_sample(fetch(split, indices), device)
            for indices in epoch_batches(split, validated.train.batch_size, 0, 0)[:4]
        ]
        for number in range(1, warmup + 1):
            trainer.iteration(batches[number % len(batches)], number, logs=False)
        with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
            trainer.iteration(batches[0], warmup + 1, logs=False)
        flops = counter.get_total_flops()
        peak = matmul_peak(DTYPES[validated.train.precision], device)
        iterations = 0
        sync(device)
        started = time.perf_counter()
        while iterations < 3 or time.perf_counter() - started < min_seconds:
            trainer.iteration(batches[iterations % len(batches)], warmup + 2 + iterations, logs=False)
            iterations += 1
        sync(device)
        seconds = time.perf_counter() - started
    on_gpu = device.type == "cuda"
    memory = torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else high_water_mb() - imported
    batch = validated.train.batch_size
    achieved = flops * iterations / seconds / 1e9
    return {
        "pairs_per_s": round(batch * iterations / seconds, 2),
        "seconds_per_iter": round(seconds / iterations, 4),
        "iterations_timed": iterations,
        "gflop_per_iter": round(flops / 1e9, 2),
        "achieved_gflops": round(achieved, 1),
        "peak_gflops": round(peak, 1),
        "mfu": round(achieved / peak, 3),
        "peak_mem_mb": round(memory, 1),
    }


def measure_in_subprocess(row: dict[str, Any], min_seconds: float, warmup: int) -> dict[str, Any]:
    """``measure`` in a fresh process, so each row's memory peak and allocator start clean."""
    command = [sys.executable, __file__, "--row", json.dumps(row), "--min-seconds", str(min_seconds)]
    done = subprocess.run([*command, "--warmup", str(warmup)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def device_description() -> dict[str, Any]:
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
    else:
        model = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        name = model[0].split(":", 1)[1].strip() if model else platform.processor()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "name": name,
        "type": "cuda" if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """pairs/s per row, one bar group per (preset, model, batch), a bar per precision and switch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["preset"], r["model"], r["batch"]) for r in rows})
    variants = list(dict.fromkeys((r["precision"], r["switch"]) for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, len(groups) * 1.2), 3.8))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        speed = {
            (r["preset"], r["model"], r["batch"]): r["pairs_per_s"]
            for r in rows
            if (r["precision"], r["switch"]) == variant
        }
        values = [speed.get(g, 0) for g in groups]
        ax.bar([j + i * width for j in range(len(groups))], values, width, label=" ".join(variant))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))])
    ax.set_xticklabels([f"{p}\n{m}\nB={b}" for p, m, b in groups], fontsize=6)
    ax.set_yscale("log")
    ax.set_ylabel("training pairs / s")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in ("preset", "model", "batch", "precision", "switch"))


def updated(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """``before``'s results with ``now``'s rows (measured or skipped) replacing those of the same key."""
    replaced = {row_key(r) for r in now["rows"] + now["skipped"]}
    timing = {k: before["settings"][k] for k in ("warmup_iterations", "min_seconds") if k in before["settings"]}
    kept_rows = [timing | r for r in before["rows"] if row_key(r) not in replaced]
    kept_skipped = [r for r in before["skipped"] if row_key(r) not in replaced]
    peaks = before.get("matmul_peak_gflops", {}) | now["matmul_peak_gflops"]  # the latest of each precision
    rows, skipped = kept_rows + now["rows"], kept_skipped + now["skipped"]
    return now | {"matmul_peak_gflops": peaks, "rows": rows, "skipped": skipped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="cpu,paper")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument(
        "--switches", default="plain,channels_last,compile", help="execution switches, each measured on its own"
    )
    parser.add_argument("--min-seconds", type=float, default=8.0, help="time each row at least this long")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument(
        "--emulated-too",
        action="store_true",
        help="measure bf16 rows even where bf16 is emulated (slow: minutes a row)",
    )
    parser.add_argument(
        "--update", action="store_true", help="keep the other rows of an existing throughput.json; replace these"
    )
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: measure one row (JSON) and print it
    args = parser.parse_args(argv)
    if args.row:
        row = json.loads(args.row)
        host = PluginHost.load(discover(builtin_only=True), blocked=())
        spec = spec_for(row["preset"], row["model"], row["batch"], row["precision"], row["switch"])
        reuse = NO_REUSE not in row["switch"].split("+")
        print(json.dumps(measure(host, spec, args.min_seconds, args.warmup, reuse)))
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peaks = {precision: matmul_peak(DTYPES[precision], device) for precision in args.precisions.split(",")}
    emulated = peaks.get("bf16", 0.0) < EMULATED_SHARE * peaks.get("fp32", 0.0)
    switches = args.switches.split(",")
    for switch in switches:  # an unknown switch fails before any row runs
        switch_settings(switch)
    rows, skipped = [], []
    for preset in args.presets.split(","):
        for model in args.models.split(","):
            for batch in map(int, args.batches.split(",")):
                for precision, switch in itertools.product(args.precisions.split(","), switches):
                    row = {"preset": preset, "model": model, "batch": batch, "precision": precision, "switch": switch}
                    why = skip_reason(preset, precision, switch, peaks) if emulated and not args.emulated_too else None
                    if why is not None:
                        skipped.append(row | {"why": why})
                        continue
                    row |= measure_in_subprocess(row, args.min_seconds, args.warmup)
                    row |= {"warmup_iterations": args.warmup, "min_seconds": args.min_seconds}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    result = {
        "device": device_description(),
        "settings": {
            "what": "Trainer.iteration: one critic and one generator update on real embedded MNIST x SynDigits "
            "batches (SynDigits stands in for SVHN; same shapes), latent (16, 8, 8), L1; no logging or checkpoints",
            "models": {name: {"model": m["model"], **m["objective"]} for name, m in MODELS.items()},
            "estimators": ESTIMATORS,
            "peak": f"best of 5 rounds of 4 products of {PEAK_SIDE}x{PEAK_SIDE} matrices in the row's precision",
        },
        "matmul_peak_gflops": {precision: round(peak, 1) for precision, peak in peaks.items()},
        "rows": rows,
        "skipped": skipped,
    }
    if args.update and (args.out / "throughput.json").is_file():
        result = updated(json.loads((args.out / "throughput.json").read_text(encoding="utf-8")), result)
        rows = result["rows"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "throughput.json", json.dumps(result, indent=2) + "\n")
    plot(rows, args.out / "throughput.png")
    print(f"wrote {args.out / 'throughput.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
