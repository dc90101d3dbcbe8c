#!/usr/bin/env bash
# Stop the single-node SLURM cluster that scripts/slurm/start-cluster.sh started:
# exactly the daemons recorded in $HEBBIAN_ES_SLURM_DIR/pids/ (slurmd, slurmctld,
# slurmdbd, mariadbd, munged), each only while its pid still runs that program.
# Jobs still in the cluster are cancelled first, so no job step outlives it.
# Idempotent: nothing running is not an error. Configs, database and logs stay.
set -uo pipefail

ME=stop-cluster.sh
D="${HEBBIAN_ES_SLURM_DIR:-/var/tmp/hebbian_es_slurm}"
DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)   # reverse of the start order
unset SLURM_CONF

if [[ $EUID -ne 0 ]]; then
    echo "$ME: must run as root (the daemons run as root or as munge/mysql)" >&2
    exit 1
fi
if [[ ! -d $D/pids ]]; then
    echo "slurm cluster: nothing to stop ($D/pids does not exist)"
    exit 0
fi
mkdir -p "$D/log"
LOG="$D/log/stop.log"
T0=$(date +%s.%N)
log() { printf '%s [%s] %s\n' "$(date +%T.%3N)" "$ME" "$*" >>"$LOG"; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# Serialize with start-cluster.sh -- unless it is start-cluster.sh calling us
# (it already holds the lock on fd 9).
if ! { true >&9; } 2>/dev/null; then
    exec 9>"$D/lock"
    flock -w 300 9 || { echo "$ME: could not get the lock $D/lock within 300 s" >&2; exit 1; }
fi

# shellcheck source=pids.sh
source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

log "---- stop (state dir $D)"
running=()
for n in "${DAEMONS[@]}"; do [[ -n "$(pid_of "$n")" ]] && running+=("$n"); done
if ((${#running[@]} == 0)); then
    rm -f "$D"/pids/*.pid
    log "nothing running"
    echo "slurm cluster: nothing running"
    exit 0
fi

# Cancel what is still queued or running, while slurmctld and slurmd are up, so
# that no slurmstepd or job process is orphaned.
if [[ -n "$(pid_of slurmctld)" && -n "$(pid_of slurmd)" ]]; then
    jobs=$(timeout 10 squeue -h -o '%i' 2>>"$LOG" | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs >>"$LOG" 2>&1
        for ((i = 0; i < 100; i++)); do
            [[ -z "$(timeout 10 squeue -h -o '%i' 2>/dev/null)" ]] && break
            sleep 0.2
        done
    fi
fi

# Three phases, each daemon of a phase signalled together: the slurm daemons that
# run jobs, then slurmdbd (after slurmctld has sent its last records), then the
# database and munged.
failed=()
stop_phase() {
    local n pid i todo=()
    for n in "$@"; do
        pid=$(pid_of "$n")
        if [[ -z $pid ]]; then rm -f "$D/pids/$n.pid"; continue; fi
        log "stopping $n (pid $pid)"
        kill -TERM "$pid" 2>/dev/null
        todo+=("$n:$pid")
    done
    for ((i = 0; i < 200; i++)); do   # up to 40 s, then SIGKILL
        local left=()
        for t in "${todo[@]}"; do [[ -n "$(pid_of "${t%%:*}")" ]] && left+=("$t"); done
        ((${#left[@]} == 0)) && break
        if ((i == 150)); then
            for t in "${left[@]}"; do
                log "${t%%:*} (pid ${t#*:}) ignored SIGTERM for 30 s: SIGKILL"
                kill -KILL "${t#*:}" 2>/dev/null
            done
        fi
        sleep 0.2
    done
    for t in "${todo[@]}"; do
        if [[ -n "$(pid_of "${t%%:*}")" ]]; then
            failed+=("$t")
        else
            rm -f "$D/pids/${t%%:*}.pid"
        fi
    done
}
stop_phase slurmd slurmctld
stop_phase slurmdbd
stop_phase mariadbd munged

if ((${#failed[@]})); then
    log "FAILED to stop ${failed[*]}"
    echo "$ME: could not stop ${failed[*]}; see $LOG" >&2
    exit 1
fi
log "stopped ${running[*]} in $(elapsed) s"
echo "slurm cluster stopped (${running[*]}) in $(elapsed) s"
