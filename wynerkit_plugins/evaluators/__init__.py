"""Built-in evaluator plugins: metrics a trained run writes into summary.json."""
