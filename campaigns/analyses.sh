#!/usr/bin/env bash
# The paper's figures on the trained quadruped agent (issue 13): every analysis of
# docs/analyses.md on zoo/ant_damage_abcd (static_vs_hebbian with zoo/ant_damage_static), on
# the three named bodies.  The PNGs and JSON summaries go to docs/results/quadruped/analyses/
# (the raw CSV/NPZ stay in the scratch folder: regenerable, and the PCA's weights are large).
#   campaigns/analyses.sh [scratch dir]      (default /tmp/quadruped_analyses)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${1:-/tmp/quadruped_analyses}
PY=${PY:-.venv/bin/python}
export MKL_CBWR=COMPATIBLE
out=docs/results/quadruped/analyses
mkdir -p "$out" "$scratch"
run() { "$PY" -m hebbian_es.analyze "$@" run=zoo/ant_damage_abcd "out=$scratch" progress=false; }
run analysis=freeze &
run analysis=actuator_saturation &
wait
run analysis=weight_zeroing &
run analysis=pca &
wait
run analysis=weights &
# on standard only: the static agent falls (its lifetime ends at t ~ 209) on the other two bodies before t0 = 300
run analysis=static_vs_hebbian static=zoo/ant_damage_static bodies=standard &
wait
cp "$scratch"/*.png "$scratch"/*.json "$out"/
ls -la "$out"
