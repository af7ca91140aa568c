#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine (Debian 12's slurmctld, slurmd, slurm-client 22.05 and munge):
# slurmctld and slurmd on localhost, one partition `local` with this machine's CPUs and memory. Idempotent: installs the
# packages only if missing, writes the config only if it changed, starts only what is not running.
# Root only (it writes /etc/slurm and starts daemons). Used by tests/test_slurm.py; see README.
#
#   bash scripts/slurm_localhost.sh          # set up / start, wait until the node is idle
#   bash scripts/slurm_localhost.sh stop     # stop slurmctld, slurmd, munged
set -euo pipefail
CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }     # a daemon, by its pid file
stop() {
  for f in /run/slurmctld.pid /run/slurmd.pid /run/munge/munged.pid; do
    if running "$f"; then kill "$(cat "$f")"; fi
  done
}
[ "${1:-}" = stop ] && { stop; exit 0; }

[ "$(id -u)" = 0 ] || { echo "slurm_localhost: needs root (writes /etc/slurm, starts daemons)" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
   || ! command -v sbatch >/dev/null; then
  echo "slurm_localhost: installing Debian's slurmctld, slurmd, slurm-client and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
fi

# munge: one key shared by controller and node (the same machine here)
if [ ! -s /etc/munge/munge.key ]; then mungekey --create --force; fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

# slurm.conf: the whole machine as one node; memory leaves 1 GiB to the system.
# MinJobAge keeps finished jobs visible to squeue for 10 min: there is no accounting database
# (slurmdbd), so the executor queries job states with squeue, not sacct.
# MessageTimeout 2 s (default 10): every `snakemake` start, whatever its executor, runs `scontrol show config`
# through the SLURM executor plugin; with this cluster stopped (outside the SLURM test) scontrol then gives up
# after 1 s instead of 9 s, on every no-op run and every DAG test. Localhost round trips need far less.
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
want=$(cat <<EOF
# written by peftbench scripts/slurm_localhost.sh
ClusterName=localhost
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
MessageTimeout=2
SchedulerParameters=sched_interval=1
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
  echo "$want" > "$CONF"
  stop; sleep 1      # a changed config needs fresh daemons (munged restarts below)
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

running /run/slurmctld.pid || slurmctld
running /run/slurmd.pid || slurmd

# wait until the controller answers and the node accepts jobs
for _ in $(seq 60); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mixed*|allocated*) echo "slurm_localhost: node $NODE $state ($CPUS CPUs, $MEM_MB MB), partition local"; exit 0 ;;
    down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "slurm_localhost: the node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo >&2 || true
exit 1
