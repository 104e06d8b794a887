"""Sweeps: grid and baseline cells, resumable cell runs, ``sweep.json`` and the reports."""
