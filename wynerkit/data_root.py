"""Where datasets live: ``data.root`` in a spec, else ``$WYNERKIT_DATA``, else a per-user cache dir;
and where caches of generated data go: ``$WYNERKIT_CACHE``, else a per-user cache dir, never the data root.

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


def default_cache_root() -> Path:
    """The per-user cache directory for generated data, pair indices and trained classifiers."""
    return platformdirs.user_cache_path("wynerkit") / "cache"


def cache_root() -> Path:
    """Where caches are written: ``$WYNERKIT_CACHE``, else the per-user cache directory; never the data root.

    A data root may be read-only or shared, so nothing wynerkit computes is written into it.
    """
    from_env = os.environ.get(CACHE_ENV, "").strip()
    return Path(from_env).expanduser() if from_env else default_cache_root()


def old_cache_roots(data_root: Path) -> list[Path]:
    """Caches that are still read, never written: ``<data root>/cache``, where wynerkit 0.1 wrote them.

    Empty when ``$WYNERKIT_CACHE`` is set: then that directory is the only cache.
    """
    if os.environ.get(CACHE_ENV, "").strip():
        return []
    old = data_root / "cache"
    return [old] if old.is_dir() else []
