#!/usr/bin/env bash
# Beyond the paper's rule on the quadruped damage task (docs/plasticity.md): abcd, abcd + neuromodulation,
# 16 and 64 shared rules (genomic bottleneck, standing in for evolve-then-merge), oja, bcm and static, 3 seeds each.
# Usage: sweeps/plasticity.sh [overrides...]   e.g.  env=ant_fast hydra/launcher=slurm
# Same as: python -m hebbian_es -m sweep=plasticity [overrides...]  (conf/sweep/plasticity.yaml).
# Running it again with the same overrides resumes every unfinished run.
exec "${PYTHON:-python}" -m hebbian_es -m sweep=plasticity "$@"
