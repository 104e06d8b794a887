"""``wynerkit data extract-features sketchy --weights FILE``: VGG-16 features of the Sketchy images.

Reads the image folders under ``<root>/sketchy`` (layout in ``sketchy.py``), computes features with
a local torchvision VGG-16 state dict (no download, no torchvision), and writes the released layout
``features/split{1,2}/{train,test}_{sketch,image}_{features,paths}.npy`` for both zero-shot splits,
plus ``features/extraction.json`` recording how. The default 512-d ``conv5_3`` features (spatial mean
of the last convolution) have the size of the released SEM-PCYC features but come from an ImageNet
VGG-16, not from SEM-PCYC's networks fine-tuned on sketches and photos: an approximation of them.

The core owns the ``data`` command group; the ``sketchy`` plugin's ``wynerkit_register_commands``
receives the app after the group exists and ``add_extract_command`` finds the group among the app's
registered Typer groups and adds ``extract-features`` to it.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer

from wynerkit.atomic import write_json_atomic
from wynerkit.cli.data import RootOption
from wynerkit.cli.errors import reports_usage_errors
from wynerkit.data_root import resolve_data_root
from wynerkit.datafiles import DataSource, content_digest
from wynerkit.errors import UsageError
from wynerkit_plugins.datasets.sketchy_layout import (
    EXTRACTION_RECORD,
    FOLDER,
    SKETCHY_SOURCE,
    class_of,
    features_dir,
    list_images,
    load_class_lists,
    save_feature_set,
    zero_shot_split,
)
from wynerkit_plugins.datasets.vgg16 import Layer, extract_features, load_vgg16

LOG_EVERY = 10_000
"""Images between two progress lines on stderr."""


def log_progress(kind: str, done: int, total: int) -> None:
    if done == total or done // LOG_EVERY != (done - 1) // LOG_EVERY:
        print(f"sketchy: {kind} features: {done} of {total} images", file=sys.stderr, flush=True)


def extract_sketchy_features(
    root: Path,
    weights: Path,
    *,
    layer: Layer = "conv5_3",
    image_size: int = 224,
    batch_size: int = 64,
    device: str = "cpu",
    workers: int = 0,
    source: DataSource = SKETCHY_SOURCE,
    log: bool = False,
) -> Path:
    """Compute the features of every sketch and photo and write both splits' files; returns the features folder."""
    lists = load_class_lists(root, source=source)
    sketchy_dir = Path(root) / FOLDER
    images = list_images(sketchy_dir, lists.classes)
    model = load_vgg16(weights, layer)
    features = {
        kind: extract_features(
            model,
            [sketchy_dir / p for p in paths],
            image_size=image_size,
            batch_size=batch_size,
            device=device,
            workers=workers,
            progress=functools.partial(log_progress, kind) if log else None,
        )
        for kind, paths in images.items()
    }
    for kind, paths in images.items():
        paths_array = np.asarray(paths, dtype=str)
        classes = np.array([class_of(p) for p in paths], dtype=str)
        for number in (1, 2):
            split = zero_shot_split(lists, number)
            for part, names in (("train", split.train), ("test", split.test)):
                keep = np.isin(classes, names)
                save_feature_set(root, number, part, kind, features[kind][keep], paths_array[keep])
    out = features_dir(root)
    write_json_atomic(
        out / EXTRACTION_RECORD,
        {
            "extractor": f"wynerkit VGG-16, layer {layer} ({model.dim}-d)",
            "weights": Path(weights).name,
            "weights_sha256": content_digest(Path(weights), "sha256", gzipped=False),
            "image_size": image_size,
            "preprocessing": "RGB, bilinear resize to a square, ImageNet mean/std normalisation",
            "counts": {kind: len(paths) for kind, paths in images.items()},
            "note": "an approximation of the released SEM-PCYC features (those come from fine-tuned networks)",
        },
    )
    return out


def add_extract_command(cli: typer.Typer) -> None:
    """Add ``extract-features`` to the core's ``data`` command group (the app must already have it)."""
    data_app = next((group.typer_instance for group in cli.registered_groups if group.name == "data"), None)
    if data_app is None:
        raise RuntimeError("the wynerkit command line has no `data` group to add `extract-features` to")

    @data_app.command("extract-features")
    @reports_usage_errors
    def extract(
        name: Annotated[Literal["sketchy"], typer.Argument(metavar="NAME", help="The dataset (only sketchy).")],
        weights: Annotated[
            Path,
            typer.Option(
                "--weights", exists=True, dir_okay=False, help="A torchvision VGG-16 state dict (.pth or .safetensors)."
            ),
        ],
        root: RootOption = None,
        layer: Annotated[
            Literal["conv5_3", "fc7"],
            typer.Option(help="conv5_3: spatial mean of the last convolution, 512-d; fc7: 4096-d."),
        ] = "conv5_3",
        image_size: Annotated[int, typer.Option(min=32, help="Side images are resized to.")] = 224,
        batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 64,
        device: Annotated[str, typer.Option(help="Torch device, e.g. cpu or cuda.")] = "cpu",
        workers: Annotated[int, typer.Option(min=0, help="DataLoader processes decoding images.")] = 0,
    ) -> None:
        """Compute VGG-16 features of a dataset's images from local weights, in the layout its dataset reads."""
        try:
            out = extract_sketchy_features(
                resolve_data_root(root),
                weights,
                layer=layer,
                image_size=image_size,
                batch_size=batch_size,
                device=device,
                workers=workers,
                log=True,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        typer.echo(f"{name}: wrote split1/ and split2/ features to {out}")
