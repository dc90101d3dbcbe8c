#!/usr/bin/env bash
# Quadruped training-body sets (paper, standard_only, random damage), 3 seeds each.
# Usage: sweeps/morphology_sets.sh [overrides...]   e.g.  hydra/launcher=slurm
# Same as: python -m hebbian_es -m sweep=morphology_sets [overrides...]  (conf/sweep/morphology_sets.yaml).
# Running it again with the same overrides resumes every unfinished run.
exec "${PYTHON:-python}" -m hebbian_es -m sweep=morphology_sets "$@"
