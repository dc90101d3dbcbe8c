"""Reports over finished runs: the sweep comparison (cli: runs -> aggregate -> render, plots, wandb)
and the comparison of a few runs' curves (compare, `python -m hebbian_es.plots`)."""
