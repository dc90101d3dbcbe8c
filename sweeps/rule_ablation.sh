#!/usr/bin/env bash
# Rule ablation (paper Table 1 / Fig. 2): rules a, ad, abc, abcd and static, 3 seeds each.
# Usage: sweeps/rule_ablation.sh [overrides...]   e.g.  env=ant hydra/launcher=slurm
# Same as: python -m hebbian_es -m sweep=rule_ablation [overrides...]  (conf/sweep/rule_ablation.yaml).
# Running it again with the same overrides resumes every unfinished run.
exec "${PYTHON:-python}" -m hebbian_es -m sweep=rule_ablation "$@"
