#!/usr/bin/env bash
# Table 1 from the quadruped campaigns (issue 13): each trained run becomes a zoo entry (its
# last checkpoint, the 100-lifetime test protocol on every body and the 20 fixed random
# damages, a GIF), then the two side by side with the paper's Table 1 and the training curves
# go to docs/results/quadruped/.  The two exports run in parallel, one core each.
#   campaigns/table1.sh [episodes]      (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
episodes=${1:-100}
PY=${PY:-.venv/bin/python}
export MKL_CBWR=COMPATIBLE  # the shipped tables then re-evaluate to the same bits on any CPU (docs/protocol.md)
out=docs/results/quadruped
mkdir -p "$out"
for name in abcd static; do
  experiment=ant_damage_paper; [ $name = static ] && experiment=ant_damage_paper_static
  trained="python -m hebbian_es experiment=$experiment env=ant_fast optimizer.popsize=128 evaluator=serial torch_threads=1 hydra.run.dir=campaigns/ant_damage_$name (in pieces: campaigns/run.sh <minutes> $name)"
  "$PY" -m hebbian_es.zoo "run=campaigns/ant_damage_$name" "name=ant_damage_$name" "episodes=$episodes" overwrite=true \
    "command=$trained" > "$out/test_$name.txt" 2>&1 &
done
wait
"$PY" -m hebbian_es.report.table hebbian=zoo/ant_damage_abcd static=zoo/ant_damage_static paper=quadruped out="$out/table1.md"
"$PY" -m hebbian_es.plots "$out/curves.png" hebbian=campaigns/ant_damage_abcd static=campaigns/ant_damage_static
for name in abcd static; do
  cp "campaigns/ant_damage_$name/metrics.csv" "$out/${name}_metrics.csv"
  cp "campaigns/ant_damage_$name/validation.jsonl" "$out/${name}_validation.jsonl"
done
