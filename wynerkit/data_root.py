"""Where datasets live: ``data.root`` in a spec, else ``$WYNERKIT_DATA``, else a per-user cache dir.

The layout under a root is ``<root>/<source>/<files>``, e.g. ``<root>/mnist/train-images-idx3-ubyte.gz``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_ENV = "WYNERKIT_DATA"
CACHE_ENV = "WYNERKIT_CACHE"


def default_data_root() -> Path:
    """The per-user cache directory used when nothing else is configured."""
    return platformdirs.user_cache_path("wynerkit") / "data"


def resolve_data_root(explicit: Path | str | None = None) -> Path:
    """The data root to use: the explicit one, else ``$WYNERKIT_DATA``, else the default."""
    if explicit is not None:
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else default_data_root()


def cache_root(data_root: Path) -> Path:
    """Where generated data and pair indices are cached: ``$WYNERKIT_CACHE``, else ``<data root>/cache``.

    The override keeps a read-only or shared data root untouched.
    """
    from_env = os.environ.get(CACHE_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else data_root / "cache"
