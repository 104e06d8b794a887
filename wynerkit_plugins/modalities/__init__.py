"""Built-in modality plugins."""
