"""Batches from datasets: seeded resumable order, pre-batched pairs, split names, downloads."""
