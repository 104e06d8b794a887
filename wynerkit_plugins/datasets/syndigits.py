"""SynDigits: seeded synthetic street-number crops, an offline stand-in for SVHN.

SVHN cannot be downloaded here, so the MNIST-SVHN experiments use 32x32 RGB crops drawn in the
spirit of Ganin & Lempitsky's synthetic digits: a centre digit (the label) in one of many font
faces, partial neighbouring digits at the sides, random contrasting colours, gradient, stripe and
noise-textured backgrounds, a soft drop shadow, rotation, shear, scale and translation jitter,
Gaussian blur and pixel noise.

The module is longer than most because it is one pipeline (glyphs, per-image parameters, batched
composition, cache) whose stages share their constants and are tested together.

Each (font, digit) glyph is rendered once with Pillow into a grayscale mask. Per-image parameters
(and the pixel noise) are drawn with numpy, then images are composed in vectorised torch batches:
per-image affine sampling of the glyph masks with ``grid_sample``, backgrounds upsampled from small
random grids by fixed interpolation matrices, and a per-image Gaussian blur as two small matmuls.

Determinism: the output depends only on (n, seed) and the installed font set.

* Random numbers come from one ``SeedSequence(seed, spawn_key=(chunk,))`` stream per fixed-size
  chunk of ``CHUNK`` images, and all numpy work is done per chunk, so chunk ``k`` never depends on
  ``n`` or on the caller's ``batch_size``: generating ``n`` and then ``n + k`` images gives the same
  first ``n``.
* The torch side only does per-image work (elementwise arithmetic, ``grid_sample``, batched
  matmuls), whose results for one image do not depend on what else is in the batch; the tests check
  this for several batch sizes.
* The font set is whatever ``syndigits_fonts()`` finds: matplotlib's bundled fonts plus system
  fonts, so a machine with other system fonts draws other images for the same seed. Its digest is
  part of ``describe_syndigits()`` and of every cache file, and a cache drawn with other fonts is
  regenerated.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from wynerkit.atomic import write_npz_atomic

VERSION = 2
"""Bump whenever the generator's output changes for some (n, seed): cache files carry it in their name."""

IMAGE_SIZE = 32
CHUNK = 256
"""Images per random stream: the unit of determinism (a batch is a whole number of chunks)."""

DIGITS = "0123456789"
_CELL = 40  # side of a glyph mask, in glyph pixels
_GLYPH_HEIGHT = 28  # digit height inside a glyph mask: every font is scaled to it
_PROBE_SIZE = 100  # point size used to measure a font before scaling it
_MAX_HEIGHT_RATIO = 1.35  # tallest / shortest digit: rejects old-style figures and symbol fonts
_MIN_STROKE = 0.15  # mean ink / height^2: hairline faces vanish at 32 px
_MIN_CONTRAST = 0.3  # |luminance(fg) - luminance(bg)|, colours in [0, 1]
_LUMA = np.array([0.299, 0.587, 0.114])
_NEIGHBOUR_P = 0.75  # probability of a neighbouring digit on each side
_BLUR_RADIUS = 3
_COORDS = (2 * np.arange(IMAGE_SIZE) + 1) / IMAGE_SIZE - 1  # pixel centres in [-1, 1], as grid_sample sees them
_COORDS_T = torch.from_numpy(_COORDS.astype(np.float32))


def _reflected_shifts() -> np.ndarray:
    """[2r + 1, S, S] 0/1 matrices moving row j to row i = j + shift, reflecting at the borders.

    A per-image blur matrix is the tap-weighted sum of these, so blurring is two small matmuls.
    """
    shifts = np.arange(-_BLUR_RADIUS, _BLUR_RADIUS + 1)[:, None]
    rows = np.arange(IMAGE_SIZE)
    source = np.abs(rows + shifts)
    source = np.where(source > IMAGE_SIZE - 1, 2 * (IMAGE_SIZE - 1) - source, source)
    matrices = np.zeros((len(shifts), IMAGE_SIZE, IMAGE_SIZE))
    matrices[np.arange(len(shifts))[:, None], rows, source] = 1
    return matrices


_BLUR_SHIFTS = _reflected_shifts()


def _upsampling_matrix(size: int, mode: str) -> torch.Tensor:
    """[S, size] matrix U such that U @ X @ U.T is torch's ``interpolate`` of a size x size X to S x S."""
    basis = torch.eye(size).view(size, 1, 1, size)
    return F.interpolate(basis, size=(1, IMAGE_SIZE), mode=mode, align_corners=False).view(size, IMAGE_SIZE).T


_UP_COARSE = _upsampling_matrix(4, "bicubic")
_UP_FINE = _upsampling_matrix(16, "bilinear")


@dataclasses.dataclass(frozen=True)
class SynDigitsFont:
    """One usable font face: its "Family Style" name and the file it was read from."""

    name: str
    path: str


@dataclasses.dataclass(frozen=True)
class _GlyphBank:
    fonts: tuple[SynDigitsFont, ...]
    masks: torch.Tensor  # [n_fonts * 10, 1, _CELL, _CELL] float32 in [0, 1], index font * 10 + digit
    widths: np.ndarray  # [n_fonts, 10] ink width of each glyph, in glyph pixels
    digest: str  # sha256 over the font names and file contents


def _candidate_font_paths() -> list[Path]:
    """matplotlib's bundled fonts first (stable across machines), then system fonts, each sorted."""
    bundled_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    bundled = sorted(p for p in bundled_dir.iterdir() if p.suffix in {".ttf", ".otf"})
    system = sorted(Path(p) for p in font_manager.findSystemFonts())
    return bundled + system


def _render_digits(path: Path) -> tuple[str, np.ndarray, np.ndarray] | None:
    """Name, [10, _CELL, _CELL] masks and ink widths of one font, or None if its digits are unusable.

    Fonts are scaled so their median digit is _GLYPH_HEIGHT tall and each glyph is centred on its
    ink box, so fonts differ in shape, not in size or placement (the affine jitter adds those).
    """
    try:
        probe = ImageFont.truetype(str(path), _PROBE_SIZE)
        heights = np.array([bottom - top for _, top, _, bottom in map(probe.getbbox, DIGITS)])
        if heights.min() <= 0 or heights.max() > _MAX_HEIGHT_RATIO * heights.min():
            return None
        font = ImageFont.truetype(str(path), round(_PROBE_SIZE * _GLYPH_HEIGHT / float(np.median(heights))))
        boxes = [font.getbbox(d) for d in DIGITS]
    except (OSError, ValueError):  # unreadable, bitmap-only or otherwise odd font files
        return None
    masks = np.zeros((len(DIGITS), _CELL, _CELL), np.float32)
    for digit, (left, top, right, bottom) in enumerate(boxes):
        if max(right - left, bottom - top) > _CELL - 2:
            return None
        canvas = Image.new("L", (_CELL, _CELL))
        origin = ((_CELL - left - right) / 2, (_CELL - top - bottom) / 2)
        ImageDraw.Draw(canvas).text(origin, DIGITS[digit], font=font, fill=255)
        masks[digit] = np.asarray(canvas, np.float32) / 255
    if len({m.tobytes() for m in masks}) < len(DIGITS):  # a .notdef box or a blank for every digit
        return None
    if masks.sum() / len(DIGITS) < _MIN_STROKE * _GLYPH_HEIGHT**2:
        return None
    family, style = font.getname()
    widths = np.array([right - left for left, _, right, _ in boxes], np.float64)
    return f"{family} {style}", masks, widths


@functools.cache
def _glyph_bank() -> _GlyphBank:
    """Render every usable (font, digit) glyph once; faces already seen under the same name are skipped."""
    fonts: list[SynDigitsFont] = []
    masks: list[np.ndarray] = []
    widths: list[np.ndarray] = []
    digest = hashlib.sha256()
    for path in _candidate_font_paths():
        rendered = _render_digits(path)
        if rendered is None or any(f.name == rendered[0] for f in fonts):
            continue
        fonts.append(SynDigitsFont(rendered[0], str(path)))
        masks.append(rendered[1])
        widths.append(rendered[2])
        digest.update(rendered[0].encode() + hashlib.sha256(path.read_bytes()).digest())
    if not fonts:
        raise RuntimeError("SynDigits found no font that renders the digits 0-9")
    bank = torch.from_numpy(np.concatenate(masks)).unsqueeze(1)
    return _GlyphBank(tuple(fonts), bank, np.stack(widths), digest.hexdigest())


def syndigits_fonts() -> tuple[SynDigitsFont, ...]:
    """The font faces SynDigits draws from, in the order their indices are sampled."""
    return _glyph_bank().fonts


def describe_syndigits() -> dict[str, Any]:
    """JSON-able facts for a run summary: generator version and the font set the images depend on."""
    bank = _glyph_bank()
    return {
        "generator": "syndigits",
        "version": VERSION,
        "image_shape": [IMAGE_SIZE, IMAGE_SIZE, 3],
        "n_fonts": len(bank.fonts),
        "fonts": [f.name for f in bank.fonts],
        "fonts_digest": bank.digest,
    }


@dataclasses.dataclass(frozen=True)
class _Params:
    """Everything random about a set of images, with a leading image axis (S: IMAGE_SIZE).

    Image-shaped fields use the layout [m, S(rows), channels, S(columns)], in which both blur
    passes are plain matmuls over all channels at once.
    """

    labels: np.ndarray  # [m] int64
    glyphs: np.ndarray  # [m, 3] int64 glyph-bank index of the centre, left and right digit
    affine: np.ndarray  # [m, 3, 2, 3] output -> glyph-cell coordinates of each of the three glyphs (normalised)
    fg: np.ndarray  # [m, 1, 3, 1] digit colour
    coarse: np.ndarray  # [m, 3, 4, 4] base background colour plus low-frequency texture (mostly brightness)
    fine: np.ndarray  # [m, 16, 16] brightness grain
    stripe_rows: np.ndarray  # [m, S, 2] and
    stripe_cols: np.ndarray  # [m, 2, S]: their product is a stripe pattern (rank 2, so it is cheap)
    light: np.ndarray  # [m, 2] illumination gradient along x and y
    shadow: np.ndarray  # [m, 1, 1] drop-shadow strength (0: none)
    blur: np.ndarray  # [m, S, S] Gaussian blur matrix B: blurred = B @ image @ B.T
    noise: np.ndarray  # [m, S, 3, S] pixel noise

    @staticmethod
    def concat(parts: list[_Params]) -> _Params:
        return _Params(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(_Params)))


def _desaturate(colours: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """Blend [m, 3] colours towards grey of the same luminance (luminance is linear, so it is kept)."""
    grey = (colours @ _LUMA)[:, None]
    return grey + saturation[:, None] * (colours - grey)


def _contrasting_colours(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours whose luminances differ by at least _MIN_CONTRAST.

    Rejection sampling keeps the colours uniform over the admissible set; desaturation keeps
    luminance, so it cannot break the contrast. Backgrounds (walls, plates) may be fully grey.
    """
    fg, bg = rng.random((m, 3)), rng.random((m, 3))
    while (bad := np.abs((fg - bg) @ _LUMA) < _MIN_CONTRAST).any():
        fg[bad], bg[bad] = rng.random((bad.sum(), 3)), rng.random((bad.sum(), 3))
    return _desaturate(fg, rng.uniform(0.2, 1.0, m)), _desaturate(bg, rng.uniform(0.0, 1.0, m))


def _glyph_affines(rng: np.random.Generator, widths: np.ndarray) -> np.ndarray:
    """[m, 3, 2, 3] grid_sample affines of the centre, left and right glyph of each image.

    The text line maps to the output by A = R(angle) @ shear @ diag(scale * aspect, scale) plus a
    shift (pixels); sampling needs the inverse diag(1 / (scale * aspect), 1 / scale) @ shear^-1 @
    R(-angle). Neighbours sit on the same line, a random gap beyond the centre glyph's ink; an
    absent one is moved far outside its cell, where zero padding leaves nothing to see.
    """
    m = len(widths)
    scale = rng.uniform(17, 27, m) / _GLYPH_HEIGHT  # output digit height 17-27 px
    aspect = np.exp(rng.uniform(np.log(0.8), np.log(1.25), m))
    angle = np.deg2rad(rng.uniform(-15, 15, m))
    shear = rng.uniform(-0.15, 0.15, m)
    shift = rng.uniform(-2, 2, (m, 2, 1))
    cos, sin, ones, zeros = np.cos(angle), np.sin(angle), np.ones(m), np.zeros(m)
    unrotate = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)
    unshear = np.stack([np.stack([ones, -shear], -1), np.stack([zeros, ones], -1)], 1)
    inverse = np.stack([1 / (scale * aspect), 1 / scale], -1)[:, :, None] * (unshear @ unrotate)
    centre = np.concatenate([inverse * (IMAGE_SIZE / _CELL), -(inverse @ shift) / (_CELL / 2)], axis=2)

    gap = rng.uniform(0.15, 0.4, (m, 2)) * _GLYPH_HEIGHT
    distance = (widths[:, :1] + widths[:, 1:]) / 2 + gap
    distance[rng.random((m, 2)) >= _NEIGHBOUR_P] = 100 * _CELL
    affines = np.repeat(centre[:, None], 3, axis=1)
    affines[:, 1, 0, 2] += distance[:, 0] / (_CELL / 2)  # the left glyph's cell is centred at -distance
    affines[:, 2, 0, 2] -= distance[:, 1] / (_CELL / 2)
    return affines


def _stripes(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Siding-like stripes amp * sin(fx x + fy y + phase) on 30% of the images, as [m, S, 2] @ [m, 2, S].

    sin(fy y + fx x + phase) = [sin(fy y), cos(fy y)] . [cos(fx x + phase), sin(fx x + phase)].
    """
    amplitude = np.where(rng.random(m) < 0.3, rng.uniform(0.03, 0.08, m), 0.0)[:, None, None]
    frequency = rng.uniform(0.4, 1.8, (m, 1)) * IMAGE_SIZE / 2  # 0.4-1.8 radians per pixel, in [-1, 1] units
    direction = rng.uniform(0, np.pi, (m, 1))
    phase = rng.uniform(0, 2 * np.pi, (m, 1))
    along_y = frequency * np.sin(direction) * _COORDS
    along_x = frequency * np.cos(direction) * _COORDS + phase
    rows = np.stack([np.sin(along_y), np.cos(along_y)], axis=2)
    cols = np.stack([np.cos(along_x), np.sin(along_x)], axis=1)
    return amplitude * rows, cols


def _sample_chunk(rng: np.random.Generator, widths: np.ndarray) -> _Params:
    """Draw the parameters of one chunk of CHUNK images from its own stream."""
    m = CHUNK
    labels = rng.integers(0, 10, m)
    font = rng.integers(0, widths.shape[0], m)
    digits = np.concatenate([labels[:, None], rng.integers(0, 10, (m, 2))], axis=1)
    affine = _glyph_affines(rng, widths[font[:, None], digits])
    fg, bg = _contrasting_colours(rng, m)
    # Interpolation keeps constants, so the base colour rides along with the coarse texture.
    coarse = bg[:, :, None, None] + rng.uniform(0, 0.1, (m, 1, 1, 1)) * rng.standard_normal((m, 1, 4, 4))
    coarse = coarse + rng.uniform(0, 0.03, (m, 1, 1, 1)) * rng.standard_normal((m, 3, 4, 4))  # a little colour
    fine = rng.uniform(0, 0.04, (m, 1, 1)) * rng.standard_normal((m, 16, 16))
    stripe_rows, stripe_cols = _stripes(rng, m)
    light_angle = rng.uniform(0, 2 * np.pi, m)
    light = rng.uniform(0, 0.2, (m, 1)) * np.stack([np.cos(light_angle), np.sin(light_angle)], axis=1)
    shadow = np.where(rng.random(m) < 0.25, rng.uniform(0.3, 0.7, m), 0.0)[:, None, None]
    sigma = rng.uniform(0.2, 1.3, m)
    taps = np.exp(-(np.arange(-_BLUR_RADIUS, _BLUR_RADIUS + 1) ** 2) / (2 * sigma[:, None] ** 2))
    blur = np.einsum("mk,kij->mij", taps / taps.sum(axis=1, keepdims=True), _BLUR_SHIFTS)
    # Uniform noise with standard deviation 0.005-0.04: after quantisation it looks like Gaussian
    # noise, and it is four times cheaper to draw, which matters at 3072 values per image.
    noise_std = rng.uniform(0.005, 0.04, (m, 1, 1, 1)).astype(np.float32)
    uniform = rng.random((m, IMAGE_SIZE, 3, IMAGE_SIZE), dtype=np.float32)
    noise = (np.float32(2 * np.sqrt(3)) * noise_std) * (uniform - np.float32(0.5))
    return _Params(
        labels=labels.astype(np.int64),
        glyphs=font[:, None] * 10 + digits,
        affine=_f32(affine),
        fg=_f32(fg[:, None, :, None]),
        coarse=_f32(coarse),
        fine=_f32(fine),
        stripe_rows=_f32(stripe_rows),
        stripe_cols=_f32(stripe_cols),
        light=_f32(light),
        shadow=_f32(shadow),
        blur=_f32(blur),
        noise=noise,
    )


def _f32(array: np.ndarray) -> np.ndarray:
    """float32 in C order: the torch side takes views that assume contiguous rows."""
    return np.ascontiguousarray(array, np.float32)


def _digit_alpha(affine: torch.Tensor, glyph_index: torch.Tensor, glyphs: torch.Tensor) -> torch.Tensor:
    """[m, S, S] coverage of the centre digit and its neighbours, sampled through their affines.

    The sampling grid is built elementwise from the [m, 3, 2, 3] affines (the same numbers
    ``affine_grid`` would give, without its large batched matmul).
    """
    a = affine.view(-1, 1, 1, 2, 3)
    grid = a[..., 0] * _COORDS_T.view(1, 1, -1, 1) + (a[..., 1] * _COORDS_T.view(1, -1, 1, 1) + a[..., 2])
    coverage = F.grid_sample(glyphs[glyph_index.view(-1)], grid, mode="bilinear", align_corners=False)
    return coverage.view(len(affine), 3, IMAGE_SIZE, IMAGE_SIZE).amax(dim=1)


def _background(t: dict[str, torch.Tensor]) -> torch.Tensor:
    """[m, S, 3, S] upsampled base colour and blotches, plus grain and stripes."""
    texture = torch.einsum("hi,mcij,wj->mhcw", _UP_COARSE, t["coarse"], _UP_COARSE)
    brightness = torch.einsum("hi,mij,wj->mhw", _UP_FINE, t["fine"], _UP_FINE) + t["stripe_rows"] @ t["stripe_cols"]
    return texture + brightness[:, :, None, :]


def _compose(p: _Params, glyphs: torch.Tensor) -> np.ndarray:
    """Render one batch of parameters into uint8 [m, S, S, 3] images."""
    t = {f.name: torch.from_numpy(getattr(p, f.name)) for f in dataclasses.fields(_Params)}
    m, s = len(p.labels), IMAGE_SIZE
    alpha = _digit_alpha(t["affine"], t["glyphs"], glyphs)
    shadow = F.pad(alpha, (1, 0, 1, 0))[:, :s, :s]  # light from the top left
    background = _background(t) * (1 - t["shadow"] * shadow)[:, :, None, :]
    light = 1 + t["light"][:, 0, None, None] * _COORDS_T + t["light"][:, 1, None, None] * _COORDS_T[:, None]
    images = torch.lerp(background, t["fg"], alpha[:, :, None, :]) * light[:, :, None, :]
    blur = t["blur"]
    images = (images.view(m, s * 3, s) @ blur.transpose(1, 2)).view(m, s, 3 * s)  # along rows
    images = (blur @ images).view(m, s, 3, s) + t["noise"]  # along columns
    return torch.round(images.clamp_(0, 1).mul_(255)).to(torch.uint8).permute(0, 1, 3, 2).numpy()


def generate_syndigits(n: int, seed: int, *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``n`` SynDigits images (uint8 [n, 32, 32, 3]) and their centre-digit labels (int64 [n], 0-9).

    ``batch_size`` is the number of images composed at once, rounded up to whole chunks of CHUNK;
    it trades memory and cache use for fewer torch calls and never changes the output. The default
    was the fastest on 2 cores (100,000 images: about 10 s at 1024, 17 s at 4096).
    """
    if n < 0 or seed < 0 or batch_size < 1:
        raise ValueError(f"need n >= 0, seed >= 0 and batch_size >= 1, got {n=}, {seed=}, {batch_size=}")
    bank = _glyph_bank()
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    labels = np.empty(n, np.int64)
    chunks_per_batch = -(-batch_size // CHUNK)
    n_chunks = -(-n // CHUNK)
    with torch.inference_mode():
        for first in range(0, n_chunks, chunks_per_batch):
            chunks = range(first, min(first + chunks_per_batch, n_chunks))
            rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(c,))) for c in chunks]
            params = _Params.concat([_sample_chunk(rng, bank.widths) for rng in rngs])
            start, stop = first * CHUNK, min(chunks.stop * CHUNK, n)
            images[start:stop] = _compose(params, bank.masks)[: stop - start]
            labels[start:stop] = params.labels[: stop - start]
    return images, labels


def syndigits_cache_path(root: Path, n: int, seed: int) -> Path:
    """Where ``load_or_generate_syndigits`` keeps the arrays for (n, seed)."""
    return Path(root) / "syndigits" / f"syndigits-v{VERSION}-n{n}-seed{seed}.npz"


def _load_cache(path: Path, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable, truncated or stale."""
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels, digest = data["images"], data["labels"], str(data["fonts_digest"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    valid = (
        images.shape == (n, IMAGE_SIZE, IMAGE_SIZE, 3)
        and images.dtype == np.uint8
        and labels.shape == (n,)
        and labels.dtype == np.int64
        and digest == _glyph_bank().digest
    )
    return (images, labels) if valid else None


def load_or_generate_syndigits(
    root: Path, n: int, seed: int, *, also_read: Sequence[Path] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """SynDigits (n, seed) from the cache under ``root``, generating and caching it when needed.

    The file is written to a temporary name and renamed, so readers never see half a file; one
    that is corrupt anyway, or was drawn with another font set, is regenerated and replaced.
    ``also_read`` are older cache roots that are looked in after ``root`` and never written.
    """
    for directory in (root, *also_read):
        cached = _load_cache(syndigits_cache_path(directory, n, seed), n)
        if cached is not None:
            return cached
    path = syndigits_cache_path(root, n, seed)
    images, labels = generate_syndigits(n, seed)
    write_npz_atomic(path, images=images, labels=labels, fonts_digest=np.str_(_glyph_bank().digest))
    return images, labels


__all__ = [
    "CHUNK",
    "IMAGE_SIZE",
    "VERSION",
    "SynDigitsFont",
    "describe_syndigits",
    "generate_syndigits",
    "load_or_generate_syndigits",
    "syndigits_cache_path",
    "syndigits_fonts",
]
