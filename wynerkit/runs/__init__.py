"""A run from spec to ``summary.json``: its directory created, trained, evaluated, figures drawn."""
