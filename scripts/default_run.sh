#!/usr/bin/env bash
# Regenerates the README's default-run figures (docs/results/default_cartpole_abcd_*):
# the command the README shows, on this machine, then copies what it wrote and prints the
# machine and the figures the README quotes.  tests/e2e/test_default_run.py re-runs its first
# 20 generations in CI and compares them with the shipped validation rows, so the shipped
# curve cannot drift from the code silently.
#   scripts/default_run.sh [run dir]      (default /tmp/default_run; removed first)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/default_run}
PY=${PY:-.venv/bin/python}
# MKL's same-bits-on-every-CPU mode: the shipped curve then holds on whichever machine runs the test
export MKL_CBWR=COMPATIBLE
rm -rf "$out"
start=$(date +%s)
"$PY" -m hebbian_es "hydra.run.dir=$out" progress_bar=false
end=$(date +%s)
cp "$out/validation.jsonl" docs/results/default_cartpole_abcd_validation.jsonl
cp "$out/summary.json" docs/results/default_cartpole_abcd_summary.json
cp "$out/fitness_curve.png" docs/results/default_cartpole_abcd_curve.png
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "whole command: $((end - start)) s"
"$PY" - "$out" <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
s = json.loads((run / "summary.json").read_text())
rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
val = [json.loads(l) for l in (run / "validation.jsonl").read_text().splitlines() if l.strip()]
t = s["test"]["cartpole"]
print(f"training {s['wall_time_s']:.1f} s, {s['env_steps'] / 1e6:.2f} M env steps, "
      f"{s['env_steps'] / s['wall_time_s']:,.0f} env steps/s over the run")
print(f"generation 0 population mean {rows[0]['pop_mean']:.1f}")
print("validation: " + ", ".join(f"{v['generation']}: {v['val_mean']:.1f}" for v in val))
print(f"test protocol: {t['mean']:.1f} ± {t['sd']:.1f} (min {t['min']:.0f}, max {t['max']:.0f})")
PY
