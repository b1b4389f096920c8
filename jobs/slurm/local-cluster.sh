#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for the campaign
# test and for trying the job scripts: jobs/slurm/local-cluster.sh start|stop|status [STATE_DIR]
# Needs root (munged and slurmd run as root here). Writes its configuration and state under
# STATE_DIR (default /tmp/caustic-slurm); prints `export SLURM_CONF=...` for the clients.
set -euo pipefail
action=${1:-status}
state=${2:-/tmp/caustic-slurm}
conf=$state/slurm.conf
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# alive PIDFILE: the process recorded in PIDFILE is running.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; }
case "$action" in
start)
  if [ "$(id -u)" -ne 0 ]; then echo "$0: needs root" >&2; exit 2; fi
  for b in munged slurmctld slurmd sbatch; do
    command -v $b > /dev/null || { echo "$0: $b missing (apt-get install slurm-wlm munge)" >&2; exit 2; }
  done
  mkdir -p "$state"/{state,spool,log} /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2> /dev/null || true
  pgrep -x munged > /dev/null || su -s /bin/sh munge -c "/usr/sbin/munged" 2> /dev/null || /usr/sbin/munged --force
  cat > "$conf" <<CONF
ClusterName=caustic-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
KillWait=10
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$conf
  # This cluster's daemons only (their PID files under STATE_DIR): another cluster on the
  # machine is left alone.
  alive "$state/slurmctld.pid" || slurmctld -f "$conf"
  alive "$state/slurmd.pid" || slurmd -f "$conf"
  for i in $(seq 1 60); do
    if sinfo -h -o %T 2> /dev/null | grep -q "idle\|mixed\|alloc"; then break; fi
    sleep 0.5
  done
  sinfo -h -o "%P %T %c" | sed 's/^/slurm: /'
  echo "export SLURM_CONF=$conf"
  ;;
stop)
  # Stops the daemons this script started for STATE_DIR (their PID files), not every slurmd.
  for d in slurmd slurmctld; do
    if alive "$state/$d.pid"; then kill "$(cat "$state/$d.pid")" 2> /dev/null || true; fi
  done
  for i in $(seq 1 40); do
    alive "$state/slurmd.pid" || alive "$state/slurmctld.pid" || break
    sleep 0.25
  done
  ;;
status)
  SLURM_CONF=$conf sinfo
  ;;
*)
  echo "usage: $0 start|stop|status [STATE_DIR]" >&2
  exit 2
  ;;
esac
