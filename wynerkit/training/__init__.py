"""The training loop and what it is built from: assembled parts, objective, step, EMA, speedups, DDP."""
