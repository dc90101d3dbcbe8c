#!/usr/bin/env bash
# ABCD with each initial-weight distribution (uniform, normal, xavier, ...), 3 seeds each.
# Usage: sweeps/init_distributions.sh [overrides...]   e.g.  env=ant hydra/launcher=slurm
# Same as: python -m hebbian_es -m sweep=init_distributions [overrides...]  (conf/sweep/init_distributions.yaml).
# Running it again with the same overrides resumes every unfinished run.
exec "${PYTHON:-python}" -m hebbian_es -m sweep=init_distributions "$@"
