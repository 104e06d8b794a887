"""The names in a sweep directory: ``sweep.json`` and one run directory per cell under ``cells/``."""

from __future__ import annotations

from pathlib import Path

CELLS = "cells"
MANIFEST = "sweep.json"
DEFAULT_ROOT = Path("sweeps")
"""Where a sweep goes without ``--out``: ``sweeps/<spec name>-<hash>``."""
