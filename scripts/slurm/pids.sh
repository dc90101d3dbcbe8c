# Sourced by start-cluster.sh and stop-cluster.sh: the daemons they started, by pid file.
# A recorded pid counts only while it is alive and still runs the program we started
# (a pid reused after a reboot or a crash is not ours). Needs $D, the state dir.
pid_of() {   # name -> pid on stdout, or nothing
    local f="$D/pids/$1.pid" pid
    [[ -f $f ]] || return 0
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ -r /proc/$pid/comm && "$(</proc/$pid/comm)" == "$1" ]] && echo "$pid"
    return 0
}
