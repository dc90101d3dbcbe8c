#!/usr/bin/env bash
# The CarRacing result (issue 15): the trained campaign becomes a zoo entry (its last
# checkpoint, the 100-lifetime test protocol on env=carracing_fast, a GIF), is tested again
# with 100 lifetimes on the real CarRacing-v3 (the transfer check), and both go beside the
# paper's 872 ± 11 / 711 ± 16 in docs/results/carracing/ with the training curve.
#   campaigns/carracing_test.sh [episodes] [workers]      (default 100, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
episodes=${1:-100}
workers=${2:-2}
PY=${PY:-.venv/bin/python}
export MKL_CBWR=COMPATIBLE  # the shipped tables then re-evaluate to the same bits on any CPU (docs/protocol.md)
out=docs/results/carracing
mkdir -p "$out"
trained="python -m hebbian_es experiment=carracing_paper env=carracing_fast evaluator=serial torch_threads=1 hydra.run.dir=campaigns/carracing_abcd (in pieces: campaigns/run.sh <minutes> carracing_abcd; from generation 158 on 2 workers: WORKERS=2 campaigns/run.sh <minutes> carracing_abcd)"
"$PY" -m hebbian_es.zoo run=campaigns/carracing_abcd name=carracing_abcd "episodes=$episodes" overwrite=true \
  "command=$trained" > "$out/test_fast.txt" 2>&1
# the same agent, the same test lifetimes (seeds), on gymnasium's own CarRacing-v3
"$PY" -m hebbian_es.evaluate run=zoo/carracing_abcd env=carracing "episodes=$episodes" "workers=$workers" \
  > "$out/test_real.txt" 2>&1
real=$(sed -n 's/^wrote //p' "$out/test_real.txt" | tail -1)  # the results file evaluate names (RunDir.evaluation)
"$PY" -m hebbian_es.report.table carracing_fast=zoo/carracing_abcd "CarRacing-v3=$real" paper=carracing out="$out/table.md"
"$PY" -m hebbian_es.plots "$out/curve.png" hebbian=campaigns/carracing_abcd
cp campaigns/carracing_abcd/metrics.csv "$out/metrics.csv"
cp campaigns/carracing_abcd/validation.jsonl "$out/validation.jsonl"
# the same lifetimes with the training's early stop (more than 20 consecutive negative-reward
# steps end a lifetime), as the reference code's evaluate_hebb.py runs them (docs/protocol.md)
"$PY" -m hebbian_es.evaluate run=zoo/carracing_abcd early_stop=true "episodes=$episodes" "workers=$workers" \
  > "$out/test_fast_early_stop.txt" 2>&1
"$PY" -m hebbian_es.evaluate run=zoo/carracing_abcd env=carracing early_stop=true "episodes=$episodes" "workers=$workers" \
  > "$out/test_real_early_stop.txt" 2>&1
