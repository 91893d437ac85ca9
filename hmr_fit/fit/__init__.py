"""Camera, fitting energy, priors and the staged batched fitter (built on ``hmr_fit.body`` and ``hmr_fit.optim``)."""
