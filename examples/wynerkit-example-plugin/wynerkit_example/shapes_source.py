"""The ``shapes-pairs`` data source: which files the dataset reads, their SHA-256, and where to get them.

``wynerkit data info``, ``wynerkit data download shapes-pairs`` and ``wynerkit data verify
shapes-pairs`` work from this description alone. The files are published by
``python -m wynerkit_example.publish_shapes FOLDER``; the mirror is ``$WYNERKIT_EXAMPLE_MIRROR``,
by default a local ``python -m http.server`` on port 8000.
"""

from __future__ import annotations

import os

from wynerkit import BuildContext, NoParams
from wynerkit.datafiles import DataFile, DataSource

MIRROR_ENV = "WYNERKIT_EXAMPLE_MIRROR"
DEFAULT_MIRROR = "http://127.0.0.1:8000/shapes-pairs"
SHA256 = {  # of the content; for the gzip_ok PGMs, of the decompressed content
    "train.pgm": "1ee69511d316c42f7349882494809257fcd63af89e42a0090f7c96d0f2c36a50",
    "valid.pgm": "282aaa7dedbaba4b0207cf9da3d28f506e5c079a5f207ecdbdeb45957f9fd8e6",
    "test.pgm": "6ad5733643c013a9299e3b3d7c2b1bc132fe4b8325b5a82ab2781b49e755901d",
    "labels.json": "f6f8a3528784583db485ac1119cc6b67372fe7bbe237780512d98d79436573fe",
}


def shapes_source(mirror: str) -> DataSource:
    """The four files in ``<data root>/example/shapes/``, downloadable from ``mirror`` (a base URL)."""
    files = []
    for name, digest in SHA256.items():
        gzipped = name.endswith(".pgm")  # stored and served as NAME.gz; the checksum is of NAME
        served = f"{name}.gz" if gzipped else name
        files.append(DataFile(name=name, sha256=digest, gzip_ok=gzipped, urls=(f"{mirror}/{served}",)))
    return DataSource(
        name="shapes-pairs",
        subdir="example/shapes",  # the folder under the data root, when it is not the source's name
        files=tuple(files),
        description="shapes-pairs: 108 outlined and filled 16x16 shapes, four files (wynerkit-example-plugin)",
    )


def current_source() -> DataSource:
    """The source with its mirror taken from ``$WYNERKIT_EXAMPLE_MIRROR`` (default: a local server)."""
    return shapes_source(os.environ.get(MIRROR_ENV, DEFAULT_MIRROR).rstrip("/"))


def build_shapes_source(params: NoParams, context: BuildContext) -> DataSource:
    """Outlines and filled shapes: three gzipped PGM images and a JSON of labels, downloadable."""
    return current_source()
