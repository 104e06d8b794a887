"""Built-in density-ratio estimator plugins."""
