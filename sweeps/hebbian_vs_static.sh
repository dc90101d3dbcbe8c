#!/usr/bin/env bash
# Hebbian ABCD from random weights vs evolved static weights, 3 seeds each.
# Usage: sweeps/hebbian_vs_static.sh [overrides...]   e.g.  env=ant hydra/launcher=slurm
# Same as: python -m hebbian_es -m sweep=hebbian_vs_static [overrides...]  (conf/sweep/hebbian_vs_static.yaml).
# Running it again with the same overrides resumes every unfinished run.
exec "${PYTHON:-python}" -m hebbian_es -m sweep=hebbian_vs_static "$@"
