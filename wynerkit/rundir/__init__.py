"""One run directory's files: their paths, the run lock, checkpoints and ``metrics.jsonl``."""
