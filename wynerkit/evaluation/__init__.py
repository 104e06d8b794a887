"""Evaluation: opening a finished run's EMA model and merging evaluator metrics into ``summary.json``."""
