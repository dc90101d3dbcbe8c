#!/usr/bin/env bash
# Start or continue the quadruped campaigns (issue 13) in the background, one core each.
#   campaigns/run.sh <minutes>     # each run stops cleanly at a generation boundary after <minutes>
# The same command continues them, also on another machine from the committed run directories.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
PY=${PY:-.venv/bin/python}
common=(env=ant_fast optimizer.popsize=128 evaluator=serial torch_threads=1 progress_bar=false "stop_after_minutes=$minutes")
for name in abcd static; do
  case $name in
    abcd) exp=ant_damage_paper ;;
    static) exp=ant_damage_paper_static ;;
  esac
  dir=campaigns/ant_damage_$name
  mkdir -p "$dir"
  setsid nohup "$PY" -m hebbian_es "experiment=$exp" "${common[@]}" "hydra.run.dir=$dir" \
    >> "$dir/campaign.out" 2>&1 < /dev/null &
  echo "$name: pid $! -> $dir (log $dir/campaign.out)"
done
