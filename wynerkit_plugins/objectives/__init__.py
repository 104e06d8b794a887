"""Built-in objective terms: divergence matching, common information, reconstruction."""
