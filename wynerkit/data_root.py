"""Where datasets live: ``data.root`` in a spec, else ``$WYNERKIT_DATA``, else a per-user cache dir.

The layout under a root is ``<root>/<source>/<files>``, e.g. ``<root>/mnist/train-images-idx3-ubyte.gz``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_ENV = "WYNERKIT_DATA"


def default_data_root() -> Path:
    """The per-user cache directory used when nothing else is configured."""
    return platformdirs.user_cache_path("wynerkit") / "data"


def resolve_data_root(explicit: Path | str | None = None) -> Path:
    """The data root to use: the explicit one, else ``$WYNERKIT_DATA``, else the default."""
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else default_data_root()
