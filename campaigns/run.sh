#!/usr/bin/env bash
# Start or continue the campaigns (issues 13 and 15) in the background, one core each.
#   [WORKERS=k] campaigns/run.sh <minutes> [name ...]   # names: abcd static carracing_abcd carracing_static carracing_abcd_pop64 (default: abcd static)
# Each run stops cleanly at a generation boundary after <minutes> (exit 3, status stopped);
# the same command continues it, also on another machine from the committed run directories.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(abcd static)
PY=${PY:-.venv/bin/python}
# WORKERS=k: one run on k worker processes (evaluator=local; the same centre, generation for
# generation, as serial: tests/es/test_evaluation.py), e.g. when a single campaign has the machine to itself
case ${WORKERS:-1} in ''|*[!0-9]*|0) echo "error: WORKERS='$WORKERS' (allowed: a positive integer)" >&2; exit 2 ;; esac
if [ "${WORKERS:-1}" -gt 1 ]; then evaluator=(evaluator=local "evaluator.workers=$WORKERS"); else evaluator=(evaluator=serial); fi
common=("${evaluator[@]}" torch_threads=1 progress_bar=false "stop_after_minutes=$minutes")
for name in "${names[@]}"; do
  case $name in
    abcd) args=(experiment=ant_damage_paper env=ant_fast optimizer.popsize=128); dir=campaigns/ant_damage_abcd ;;
    static) args=(experiment=ant_damage_paper_static env=ant_fast optimizer.popsize=128); dir=campaigns/ant_damage_static ;;
    # issue 15: the paper's pixel agent on the lean renderer (same track, physics, rewards), the
    # paper's population of 200 (the first try, population 64, did not learn: campaigns/README.md)
    # issue 24: 300 generations, the reference README's CarRacing budget, for both Table 1 agents
    carracing_abcd) args=(experiment=carracing_paper env=carracing_fast generations=300); dir=campaigns/carracing_abcd ;;
    carracing_static) args=(experiment=carracing_paper_static env=carracing_fast generations=300); dir=campaigns/carracing_static ;;
    carracing_abcd_pop64) args=(experiment=carracing_paper env=carracing_fast optimizer.popsize=64 evaluator.batch_size=64); dir=campaigns/carracing_abcd_pop64 ;;
    *) echo "error: unknown campaign '$name' (allowed: abcd static carracing_abcd carracing_static carracing_abcd_pop64)" >&2; exit 2 ;;
  esac
  mkdir -p "$dir"
  setsid nohup "$PY" -m hebbian_es "${args[@]}" "${common[@]}" "hydra.run.dir=$dir" \
    >> "$dir/campaign.out" 2>&1 < /dev/null &
  echo "$name: pid $! -> $dir (log $dir/campaign.out)"
done
