"""``wynerkit retrieve RUN_DIR``: rank a trained run's test gallery for query files or test queries.

The gallery is what the ``retrieval`` evaluator ranks (the test split's distinct y items, or its
``gallery()`` in category mode), encoded with q(z|y) of the run's EMA model; each query is encoded
with q(z|x) and the gallery ranked by cosine similarity. Queries come from files (``--query``) or
from the test split itself (``--test N``, whose relevance is known and printed).

Query files: a ``.npy`` array (loaded without pickle) holding one x item or a batch of them, exactly
as the model reads x (feature vectors, or images in [-1, 1]), finite numbers only; or an image file
of at most ``MAX_QUERY_PIXELS``, read by the dataset's ``read_x(path)`` when it has one (QMUL inverts
sketches as its items are), else converted to the x item's channels and size and mapped to [-1, 1].
A file that breaks these rules is one UsageError line naming it, before anything is encoded.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
import typer
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from wynerkit.cli.errors import reports_usage_errors
from wynerkit.cli.output_files import require_output_file
from wynerkit.data.loading import evenly_spaced, fetch
from wynerkit.errors import UsageError
from wynerkit.evaluation.evaluate import eval_context
from wynerkit.evaluation.trained_run import Which, open_trained
from wynerkit.figures.panels import save_png
from wynerkit.interfaces import QueryReader
from wynerkit.plugins import PluginHost
from wynerkit_plugins.evaluators.retrieval_figure import retrieval_figure
from wynerkit_plugins.evaluators.retrieval_items import (
    Gallery,
    Mode,
    Pairing,
    encode,
    relevance,
    resolve_mode,
    test_gallery,
)
from wynerkit_plugins.evaluators.retrieval_metrics import nearest

BATCH = 512
MAX_QUERY_PIXELS = 64 * 2**20
"""The largest query image (e.g. 8192 x 8192): x items are small, and a small file whose header claims
20000 x 20000 pixels must not make the decoder allocate gigabytes. Below PIL's own bomb limit."""
MAX_QUERY_VALUES = 2**27
"""The most numbers one ``.npy`` query file may hold (512 MiB as float32)."""


@dataclass(frozen=True)
class Queries:
    """x items to rank the gallery for, their names, and (for test queries) their class and true match."""

    items: Tensor
    names: list[str]
    labels: Tensor | None = None
    match: Tensor | None = None


def image_as_item(path: Path, shape: tuple[int, ...]) -> Tensor:
    """An image file as one x item of ``shape`` ``(C, H, W)``: grey or RGB, resized, in [-1, 1]."""
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise UsageError(f"--query {path}: x items are {list(shape)} arrays, not images; pass a .npy file")
    channels, height, width = shape
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"--query {path}: not a .npy array or an image file ({exc})") from None
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).reshape(height, width, channels).copy())
    return pixels.permute(2, 0, 1).div_(127.5).sub_(1.0)


def require_small_image(path: Path) -> None:
    """Refuse an image file over ``MAX_QUERY_PIXELS`` from its header, before anything decodes it."""
    too_large = f"--query {path}: the image has more than {MAX_QUERY_PIXELS:,} pixels; shrink it first"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # PIL's warning becomes our refusal
            with Image.open(path) as opened:
                width, height = opened.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UsageError(too_large) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"--query {path}: not a .npy array or an image file ({exc})") from None
    if width * height > MAX_QUERY_PIXELS:
        raise UsageError(f"{too_large} (it is {width} x {height})")


def read_npy_items(path: Path) -> Tensor:
    """The numbers of a ``.npy`` file, mapped first so a forged header cannot allocate beyond the file."""
    try:
        with np.errstate(over="ignore"):  # an absurd header shape overflows a size product; np.load still refuses it
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # checks the header against the file's size
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"--query {path}: not a plain .npy array ({exc})") from None
    if mapped.dtype.kind not in "fiu":
        raise UsageError(f"--query {path}: holds {mapped.dtype} values; x items are numbers")
    if mapped.size > MAX_QUERY_VALUES:
        raise UsageError(
            f"--query {path}: holds {mapped.size:,} numbers; a query file holds at most {MAX_QUERY_VALUES:,}"
        )
    items = torch.from_numpy(np.array(mapped, dtype=np.float32))
    if not bool(torch.isfinite(items).all()):
        raise UsageError(f"--query {path}: holds NaN or infinite values; x items are finite numbers")
    return items


def read_query_file(path: Path, data: Any, shape: tuple[int, ...]) -> Tensor:
    """The x items ``[N, *shape]``, N >= 1, of one query file (see the module docstring for the formats)."""
    if not path.is_file():
        raise UsageError(f"--query {path}: no such file")
    if path.suffix.lower() == ".npy":
        items = read_npy_items(path)
        if tuple(items.shape) == shape:
            return items[None]
        if items.ndim == len(shape) + 1 and tuple(items.shape[1:]) == shape:
            if len(items) == 0:
                raise UsageError(f"--query {path}: holds no items (shape {list(items.shape)})")
            return items
        raise UsageError(
            f"--query {path}: shape {list(items.shape)} is neither one x item {list(shape)} "
            f"nor a batch [N, *{list(shape)}]"
        )
    require_small_image(path)
    if isinstance(data, QueryReader):
        try:
            return data.read_x(path)
        except (ValueError, OSError) as exc:
            raise UsageError(f"--query {path}: {exc}") from None
    return image_as_item(path, shape)[None]


def file_queries(paths: list[Path], data: Any, shape: tuple[int, ...]) -> Queries:
    items, names = [], []
    for path in paths:
        read = read_query_file(path, data, shape)
        items.append(read)
        names += [path.name] if len(read) == 1 else [f"{path.name}[{i}]" for i in range(len(read))]
    return Queries(torch.cat(items), names)


def test_queries(test: Any, pairing: Pairing, n: int) -> Queries:
    """``n`` evenly spaced distinct test queries (all of them if there are fewer), with their class and match."""
    chosen = torch.tensor(evenly_spaced(pairing.query_items, n))
    batch = fetch(test, pairing.query_items[chosen].tolist())
    names = [f"test query {int(i)}" for i in chosen]
    return Queries(batch["x"], names, torch.as_tensor(batch["y_label"]).long(), pairing.match[chosen])


def result_rows(queries: Queries, gallery: Gallery, mode: Mode, found: Tensor, cosines: Tensor) -> list[dict[str, Any]]:
    """One record per query: its name, class, and its ranked results (gallery position, class, cosine, relevant)."""
    marks = None
    if queries.labels is not None and queries.match is not None:
        marks = relevance(mode, found, gallery, queries.labels, queries.match)
    records = []
    for i, name in enumerate(queries.names):
        results = [
            {
                "rank": rank + 1,
                "gallery": int(found[i, rank]),
                "label": int(gallery.labels[found[i, rank]]),
                "cosine": round(float(cosines[i, rank]), 6),
                "relevant": None if marks is None else bool(marks[i, rank]),
            }
            for rank in range(found.shape[1])
        ]
        label = None if queries.labels is None else int(queries.labels[i])
        records.append({"query": name, "label": label, "results": results})
    return records


def print_records(records: list[dict[str, Any]]) -> None:
    for record in records:
        known = "" if record["label"] is None else f" (class {record['label']})"
        typer.echo(f"{record['query']}{known}")
        typer.echo("  rank  gallery  class    cosine  relevant")
        for result in record["results"]:
            relevant = {None: "", True: "yes", False: "no"}[result["relevant"]]
            rank, item, label, cosine = (result[key] for key in ("rank", "gallery", "label", "cosine"))
            typer.echo(f"  {rank:>4}  {item:>7}  {label:>5}  {cosine:>8.4f}  {relevant}")


def add_retrieve_command(cli: typer.Typer, host: PluginHost) -> None:
    """Add ``wynerkit retrieve`` to the command line; it opens runs with ``host``'s components."""

    @cli.command("retrieve")
    @reports_usage_errors
    def retrieve(
        run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", show_default=False)],
        query: Annotated[
            list[Path] | None,
            typer.Option("--query", metavar="FILE", help="A .npy array of x items, or an image file (repeatable)."),
        ] = None,
        test: Annotated[int, typer.Option("--test", min=0, help="Also rank for N evenly spaced test queries.")] = 0,
        top: Annotated[int, typer.Option("--top", min=1, help="Results shown per query.")] = 5,
        figure: Annotated[
            Path | None, typer.Option("--figure", metavar="FILE.png", help="Draw the queries with their results.")
        ] = None,
        mode: Annotated[
            Literal["auto", "category", "instance"],
            typer.Option("--mode", help="Relevance by class or by the paired item (auto: as the retrieval evaluator)."),
        ] = "auto",
        checkpoint: Annotated[
            Which, typer.Option("--checkpoint", help="The latest or the best checkpoint.")
        ] = "latest",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per query.")] = False,
    ) -> None:
        """Rank a trained run's test gallery (q(z|y)) for query items (q(z|x)) by cosine similarity."""
        if not query and not test:
            raise UsageError("retrieve: pass --query FILE (an x item) or --test N (test queries), or both")
        if figure is not None:
            require_output_file(figure, "--figure")
        parts = open_trained(run_dir, host.registry, checkpoint)
        context = eval_context(run_dir, parts.model, parts.data, parts.device, parts.spec.seed)
        test_split = parts.data.split("test")
        if len(test_split) == 0:
            raise UsageError(f"{run_dir}: the dataset's test split is empty; there is no gallery to rank")
        pairing = Pairing.of(test_split)
        chosen_mode = resolve_mode(mode, parts.data)
        shape = tuple(fetch(test_split, [0])["x"].shape[1:])
        asked = [file_queries(query, parts.data, shape)] if query else []
        if test:
            asked.append(test_queries(test_split, pairing, test))
            if len(pairing.query_items) < test:
                typer.echo(
                    f"--test {test}: the test split has {len(pairing.query_items)} distinct queries; ranking each once",
                    err=True,
                )
        with torch.no_grad():
            gallery = test_gallery(context, test_split, pairing, chosen_mode, BATCH)
            k = min(top, len(gallery.codes))
            records, drawn = [], []
            for queries in asked:
                codes = encode(context, queries.items, "x", BATCH)
                cosines, found = nearest(codes, gallery.codes, k)
                records += result_rows(queries, gallery, chosen_mode, found.cpu(), cosines.cpu())
                drawn.append((queries.items, found.cpu()))
        if as_json:
            for record in records:
                typer.echo(json.dumps(record))
        else:
            print_records(records)
        if figure is not None:
            marks = [[result["relevant"] for result in record["results"]] for record in records]
            picture = retrieval_figure(
                parts.model.x_modality,
                parts.model.y_modality,
                torch.cat([items for items, _ in drawn]),
                torch.stack([gallery.take(row) for _, found in drawn for row in found]),
                marks,
            )
            typer.echo(f"wrote {save_png(picture, figure)}", err=True)
