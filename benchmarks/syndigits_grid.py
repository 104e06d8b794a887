"""Write docs/syndigits-samples.png (SynDigits samples, one row per label) and optionally time the generator.

Usage: python benchmarks/syndigits_grid.py [--seed 0] [--out docs/syndigits-samples.png] [--time 100000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from wynerkit_plugins.datasets.syndigits import IMAGE_SIZE, generate_syndigits, syndigits_fonts

ROWS, COLUMNS, UPSCALE, PAD = 10, 12, 2, 2
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "syndigits-samples.png"


def sample_grid(seed: int) -> Image.Image:
    """The first COLUMNS images of each label among 2000 samples, 2x upscaled, tiled with a thin grey gap."""
    images, labels = generate_syndigits(2000, seed)
    cell = IMAGE_SIZE * UPSCALE + PAD
    sheet = np.full((ROWS * cell + PAD, COLUMNS * cell + PAD, 3), 128, np.uint8)
    for label in range(ROWS):
        for column, index in enumerate(np.flatnonzero(labels == label)[:COLUMNS]):
            tile = images[index].repeat(UPSCALE, axis=0).repeat(UPSCALE, axis=1)
            top, left = PAD + label * cell, PAD + column * cell
            sheet[top : top + cell - PAD, left : left + cell - PAD] = tile
    # A 256-colour palette keeps the noisy samples' PNG small enough for the docs, at no visible cost.
    return Image.fromarray(sheet).quantize(256, dither=Image.Dither.NONE)


def time_generation(n: int, seed: int) -> float:
    """Seconds to generate n images, after the one-off glyph rendering."""
    syndigits_fonts()
    start = time.perf_counter()
    generate_syndigits(n, seed)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--time", type=int, metavar="N", help="also time generating N images")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sample_grid(args.seed).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    if args.time:
        seconds = time_generation(args.time, args.seed)
        print(f"{args.time} images in {seconds:.1f} s ({torch.get_num_threads()} torch threads)")


if __name__ == "__main__":
    main()
