"""wynerkit: information-theoretic bimodal generative models."""
