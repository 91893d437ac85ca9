"""Meta-training of learned optimizers: task families, truncated unrolls, meta-loss, training loop."""
