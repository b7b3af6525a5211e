#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (Debian's slurm-wlm + munge), for the SLURM tests
# (tests/test_cluster.py) and for trying hydra/launcher=slurm:  scripts/slurm_cluster.sh start|stop|status
# Needs root (apt-get, munge's key, the daemons). Idempotent: `start` on a running cluster only checks it.
# The node is this host with all its CPUs; KillWait is short so a cancelled or timed-out job ends quickly.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
STATE=/var/spool/slurmctld
LOGS=/var/log/slurm
HOST=$(hostname -s)

say() { echo "slurm_cluster: $*"; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
  say "installing slurm-wlm and munge (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq slurm-wlm munge >/dev/null || { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; }
}

configure() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /etc/slurm "$STATE" /var/spool/slurmd "$LOGS" /run/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true  # munged checks their owner
  # Rewritten on each start: the host name and CPU count are this machine's (a CI clone gets a new one).
  cat > "$CONF" <<EOF
ClusterName=snnexp
# the loopback address: a fresh container's host name need not resolve
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$STATE
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
JobCompType=jobcomp/none
MpiDefault=none
# a job past its time limit, or cancelled, gets SIGTERM and this many seconds before SIGKILL
KillWait=10
# the scheduler looks at pending jobs (a requeued one among them) this often
SchedulerParameters=sched_interval=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

# A daemon runs when the pid in its pid file is alive (stop ends exactly those pids, nothing by name).
pidfile() { echo "/run/$1.pid"; }
running() { [ -s "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

start() {
  install
  configure
  munge -n >/dev/null 2>&1 || munged --force  # a credential only comes back from a running munged
  running slurmctld || slurmctld
  running slurmd || slurmd
  for _ in $(seq 60); do  # the node registers within seconds
    if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      say "up: $(sinfo -h -o '%P %D node(s) %T')"; return 0
    fi
    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true  # a node left down by an earlier stop
    sleep 1
  done
  say "the node did not come up: see $LOGS/slurmctld.log and $LOGS/slurmd.log" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for daemon in slurmd slurmctld; do
    if running $daemon; then kill "$(cat "$(pidfile $daemon)")"; fi
  done
  say "stopped (munged left running: other services may use it)"
}

status() {
  if running slurmctld && running slurmd && sinfo >/dev/null 2>&1; then
    sinfo; exit 0
  fi
  say "not running (start it with: scripts/slurm_cluster.sh start)"; exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
