#!/usr/bin/env bash
# Install (if needed) and start a real single-node SLURM cluster on this machine:
# munged, a private MariaDB, slurmdbd (accounting, so sacct and submitit see job
# states), slurmctld and slurmd. Idempotent: if the cluster this script started is
# still up and healthy it says so and exits 0 at once.
#
#   scripts/slurm/start-cluster.sh             (as root: apt-get, /etc/slurm, daemons)
#   scripts/slurm/stop-cluster.sh              stops exactly what this started
#
# State (pid files, logs, spool, database) lives in $HEBBIAN_ES_SLURM_DIR
# (default /var/tmp/hebbian_es_slurm). slurm.conf and slurmdbd.conf are written to
# /etc/slurm/, where sinfo/sbatch/sacct/submitit find them without any env var;
# a foreign file found there is moved to $HEBBIAN_ES_SLURM_DIR/backup/ first.
# Prints one line on success: "slurm cluster up: <node> <cpus> cpus <mem> MB".
# See docs/slurm.md.
set -Eeuo pipefail

ME=start-cluster.sh
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
D="${HEBBIAN_ES_SLURM_DIR:-/var/tmp/hebbian_es_slurm}"
ETC=/etc/slurm
CLUSTER=hebbian
PARTITION=local
ACCOUNT=hebbian
DB_PORT="${HEBBIAN_ES_SLURM_DB_PORT:-3399}"
MARKER="# Written by hebbian_es scripts/slurm/start-cluster.sh"
PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)   # start order; stop is the reverse
unset SLURM_CONF   # the tools must find /etc/slurm/slurm.conf, as any shell will

if [[ $EUID -ne 0 ]]; then
    echo "$ME: must run as root (it installs packages, writes $ETC and starts daemons)" >&2
    exit 1
fi

mkdir -p "$D"/{log,pids,run,backup,spool/slurmctld,spool/slurmd}
chmod 0755 "$D"
LOG="$D/log/start.log"
T0=$(date +%s.%N)
STEP="starting"
FAIL_LOG="$LOG"
STARTED_HERE=0

log() { printf '%s [%s] %s\n' "$(date +%T.%3N)" "$ME" "$*" >>"$LOG"; }
step() { STEP="$1"; FAIL_LOG="${2:-$LOG}"; log "== $STEP"; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

fail() {
    local msg="$1"
    log "FAILED: $msg"
    if [[ $STARTED_HERE -eq 1 ]]; then
        log "stopping the daemons started by this run"
        "$HERE/stop-cluster.sh" >>"$LOG" 2>&1 || true
    fi
    echo "$ME: failed $msg; see $FAIL_LOG (and $LOG)" >&2
    exit 1
}
trap 'fail "while $STEP (line $LINENO)"' ERR

# Serialize concurrent starts/stops.
exec 9>"$D/lock"
flock -w 300 9 || fail "to get the lock $D/lock within 300 s"

log "---- start (state dir $D)"

# ---------------------------------------------------------------- pid helpers
# shellcheck source=pids.sh
source "$(dirname "${BASH_SOURCE[0]}")/pids.sh"
alive() { [[ -n "$(pid_of "$1")" ]]; }

node_state() {   # state of our node as sinfo prints it (idle, mix, alloc, down*, ...)
    timeout 10 sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -1
}
usable_state() { [[ $1 =~ ^(idle|mix|mixed|alloc|allocated|comp|completing)$ ]]; }

report_up() {   # $1: prefix
    local line cpus mem
    line=$(timeout 10 sinfo -h -N -n "$NODE" -o '%c %m' | head -1)
    read -r cpus mem <<<"$line"
    log "$1: $NODE $cpus cpus $mem MB (elapsed $(elapsed) s)"
    echo "$1: $NODE $cpus cpus $mem MB"
}

NODE="$(hostname -s)"

# ---------------------------------------------------------------- fast path
healthy() {
    local n
    for n in "${DAEMONS[@]}"; do alive "$n" || return 1; done
    [[ -f $ETC/slurm.conf ]] && grep -qF "$MARKER" "$ETC/slurm.conf" || return 1
    timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
    usable_state "$(node_state)" || return 1
    timeout 10 sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER" || return 1
}
if healthy; then
    report_up "slurm cluster already up"
    exit 0
fi

# Something of ours may be half up (a daemon died, a reboot left stale pid files):
# stop what is left of it, then start everything afresh.
for n in "${DAEMONS[@]}"; do
    if alive "$n"; then
        step "stopping a partly running cluster"
        "$HERE/stop-cluster.sh" >>"$LOG" 2>&1
        break
    fi
done
rm -f "$D"/pids/*.pid

# ---------------------------------------------------------------- packages
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
    step "installing ${missing[*]}" "$D/log/apt.log"
    # No systemd here: keep the packages' maintainer scripts from starting services.
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            -o DPkg::Lock::Timeout=120 "${missing[@]}" </dev/null >>"$D/log/apt.log" 2>&1
    }
    # apt-get update only when the install cannot go without it (no or stale lists).
    rc=0
    if ! apt_install; then
        log "install failed; running apt-get update and trying again"
        if DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=120 \
            </dev/null >>"$D/log/apt.log" 2>&1 && apt_install; then
            rc=0
        else
            rc=1
        fi
    fi
    if [[ $made_policy -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    ((rc == 0)) || fail "to install ${missing[*]} with apt-get"
    log "packages installed at $(elapsed) s"
fi

# Refuse to fight daemons that this script did not start (their ports/sockets are ours).
for n in "${DAEMONS[@]}"; do
    if other=$(pgrep -x "$n" | head -1) && [[ -n $other ]]; then
        FAIL_LOG="$LOG"
        fail "to start: a $n not started by this script is already running (pid $other); stop it first"
    fi
done

STARTED_HERE=1

# ---------------------------------------------------------------- host name
step "checking that $NODE resolves"
if ! getent hosts "$NODE" >/dev/null; then
    echo "127.0.0.1 $NODE  # added by hebbian_es scripts/slurm/start-cluster.sh" >>/etc/hosts
    log "added $NODE to /etc/hosts"
fi

launch() {   # name logfile cmd... : detached, stdin /dev/null, pid recorded
    local name=$1 logf=$2; shift 2
    setsid "$@" </dev/null >>"$logf" 2>&1 9>&- &
    echo $! >"$D/pids/$name.pid"
    log "launched $name (pid $!): $*"
}
wait_for() {   # seconds description cmd... : poll until cmd succeeds
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    fail "waiting ${secs} s for $what"
}
must_live() { alive "$1" || fail "to start $1: it exited"; }

# ---------------------------------------------------------------- munge
step "starting munged" "$D/log/munged.log"
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    log "created /etc/munge/munge.key"
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
: >>"$D/log/munged.log"
launch munged "$D/log/munged.log" setpriv --reuid=munge --regid=munge --init-groups -- \
    /usr/sbin/munged --foreground
wait_for 15 "munged to answer" bash -c 'munge -n </dev/null | unmunge'
must_live munged

# ---------------------------------------------------------------- mariadb
step "starting the private MariaDB on 127.0.0.1:$DB_PORT" "$D/log/mariadb.log"
install -d -o mysql -g mysql -m 0750 "$D/db"
install -d -o mysql -g mysql -m 0755 "$D/run/mysql"
touch "$D/log/mariadb.log" && chown mysql:mysql "$D/log/mariadb.log"
SOCK="$D/run/mysql/mysqld.sock"
if [[ ! -d $D/db/mysql ]]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$D/db" \
        --auth-root-authentication-method=socket --skip-test-db \
        </dev/null >>"$D/log/mariadb.log" 2>&1
fi
launch mariadbd "$D/log/mariadb.log" /usr/sbin/mariadbd --no-defaults --user=mysql \
    --datadir="$D/db" --socket="$SOCK" --pid-file="$D/run/mysql/mariadbd.pid" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
    --log-error="$D/log/mariadb.log" --innodb-lock-wait-timeout=900 \
    --innodb-buffer-pool-size=512M --skip-log-bin \
    --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0
wait_for 60 "MariaDB to answer on $SOCK" mariadb-admin --no-defaults -S "$SOCK" -u root ping
must_live mariadbd

SECRET="$D/db.secret"
if [[ ! -s $SECRET ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$SECRET")
fi
DB_PASS=$(<"$SECRET")
mariadb --no-defaults -S "$SOCK" -u root >>"$D/log/mariadb.log" 2>&1 <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- configs
step "writing $ETC/slurm.conf and $ETC/slurmdbd.conf"
install -d -m 0755 "$ETC"
stamp=$(date +%Y%m%d-%H%M%S)
for f in slurm.conf slurmdbd.conf; do
    if [[ -e $ETC/$f ]] && ! grep -qF "$MARKER" "$ETC/$f"; then
        mv "$ETC/$f" "$D/backup/$f.$stamp"
        log "moved a foreign $ETC/$f to $D/backup/$f.$stamp"
    fi
done

# The node line comes from the hardware slurmd sees; memory at 95 % so the node
# is never INVAL ("Low RealMemory").
hw=$(slurmd -C 2>>"$LOG" | head -1)
[[ $hw == NodeName=* ]] || fail "to read the hardware with 'slurmd -C' (got: $hw)"
realmem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$((realmem * 95 / 100))
hw_node=$(sed 's/ RealMemory=[0-9]*//' <<<"$hw")

tmp=$(mktemp "$ETC/.slurm.conf.XXXXXX")
cat >"$tmp" <<EOF
$MARKER
# (state dir $D). Rewritten on every start; stop-cluster.sh leaves it in place.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job (pre-emption, timeout) waits cred_expire seconds before it may start
# again (default 120): 20 keeps requeue tests and resumed sweeps quick on one node.
AuthInfo=cred_expire=20
CryptoType=crypto/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/spool/slurmctld
SlurmdSpoolDir=$D/spool/slurmd
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups or systemd here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
# Jobs without --mem do not take the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# submitit's job process ignores SIGTERM: do not hold the CPUs 30 s after scancel.
KillWait=5
ReturnToService=2
SlurmctldTimeout=120
SlurmdTimeout=300
InactiveLimit=0
MinJobAge=300
Waittime=0
# Accounting (sacct), so submitit sees the state of jobs that die without a result.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$hw_node RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
chmod 0644 "$tmp"
mv "$tmp" "$ETC/slurm.conf"

tmp=$(mktemp "$ETC/.slurmdbd.conf.XXXXXX")
cat >"$tmp" <<EOF
$MARKER
# (state dir $D). Mode 0600: slurmdbd refuses anything looser.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 0600 "$tmp"
mv "$tmp" "$ETC/slurmdbd.conf"

# ---------------------------------------------------------------- slurmdbd
step "starting slurmdbd" "$D/log/slurmdbd.log"
launch slurmdbd "$D/log/slurmdbd.log" /usr/sbin/slurmdbd -D
wait_for 60 "slurmdbd to answer (sacctmgr)" timeout 10 sacctmgr -n show cluster
must_live slurmdbd

step "registering cluster $CLUSTER and account $ACCOUNT in the accounting database" "$D/log/slurmdbd.log"
if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >>"$LOG" 2>&1
fi
if ! sacctmgr -n -P show account format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
        description="hebbian_es local jobs" organization=hebbian_es >>"$LOG" 2>&1
fi
root_default=$(sacctmgr -n -P show user root format=defaultaccount)
if [[ -z $root_default ]]; then   # a new user's first account is its default
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >>"$LOG" 2>&1
elif [[ $root_default != "$ACCOUNT" ]]; then
    sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >>"$LOG" 2>&1 || true
    sacctmgr -i modify user root set defaultaccount="$ACCOUNT" >>"$LOG" 2>&1
fi

# ---------------------------------------------------------------- slurmctld, slurmd
step "starting slurmctld" "$D/log/slurmctld.log"
launch slurmctld "$D/log/slurmctld.out" /usr/sbin/slurmctld -D
wait_for 60 "slurmctld to answer (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"'
must_live slurmctld

step "starting slurmd" "$D/log/slurmd.log"
launch slurmd "$D/log/slurmd.out" /usr/sbin/slurmd -D
wait_for 60 "node $NODE to become idle" bash -c "[[ \$(sinfo -h -N -n '$NODE' -o '%t') == idle ]]"
must_live slurmd

# Jobs submitted in the first seconds after slurmctld starts can stay pending:
# finish with a real job step.
step "running the probe 'srun true'" "$D/log/slurmctld.log"
timeout 60 srun -p "$PARTITION" -N1 -n1 -t 1 -J start-cluster-probe true </dev/null >>"$LOG" 2>&1 \
    || fail "the probe 'srun true' did not finish within 60 s"

report_up "slurm cluster up"
