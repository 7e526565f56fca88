#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (no systemd needed), for tests and for running
# the kit's runs on one machine with `bkd run --executor slurm`. Idempotent: what runs already is
# left alone. Needs root. Recipe: ../../shared/spec/platform.md ("Single-node Slurm").
#
#   1. installs slurm-wlm and munge from Debian when missing;
#   2. writes a munge key when missing and starts munged;
#   3. writes /etc/slurm/slurm.conf when it is absent or was written by this script (marker line);
#      a slurm.conf from anyone else is never touched (the script stops and says so);
#   4. starts slurmctld and slurmd, waits until `sinfo` shows the node idle;
#   5. records the pids of what it started in $BKD_SLURM_RUN/pids (default /run/bkd-slurm) for stop.sh.
set -euo pipefail

RUN_DIR=${BKD_SLURM_RUN:-/run/bkd-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by boundary-kd tools/slurm/start.sh"
say() { echo "slurm-start: $*"; }
die() {
  echo "slurm-start: error: $*" >&2
  exit 1
}
alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -f "$1" ]] && cat "$1" || true; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons); try: sudo $0"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null ||
    die "apt-get install slurm-wlm munge failed; run apt-get update first or check the mirror"
fi
mkdir -p "$RUN_DIR"
touch "$RUN_DIR/pids"

# --- munge ---------------------------------------------------------------------------------------
if [[ ! -f /etc/munge/munge.key ]]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge: /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge: /run/munge
if alive "$(pid_of /run/munge/munged.pid)"; then
  say "munged already running"
else
  runuser -u munge -- /usr/sbin/munged || die "munged did not start; see /var/log/munge/munged.log"
  for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
  echo "munged $(pid_of /run/munge/munged.pid)" >>"$RUN_DIR/pids"
fi

# --- slurm.conf ----------------------------------------------------------------------------------
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
  die "$CONF exists and was not written by this script; leaving it alone. Start your own cluster, or move it away"
fi
host=$(hostname -s)
node=$(slurmd -C | head -n1)
[[ $node == NodeName=* ]] || die "slurmd -C printed no node line: $node"
cat >"$CONF.tmp" <<CONF
$MARKER
ClusterName=bkd
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MinJobAge=300
$node
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mv "$CONF.tmp" "$CONF"

# --- daemons -------------------------------------------------------------------------------------
if alive "$(pid_of "$RUN_DIR/slurmctld.pid")"; then
  say "slurmctld already running"
else
  slurmctld || die "slurmctld did not start; see /var/log/slurm/slurmctld.log"
  for _ in $(seq 100); do [[ -s $RUN_DIR/slurmctld.pid ]] && break; sleep 0.1; done
  echo "slurmctld $(pid_of "$RUN_DIR/slurmctld.pid")" >>"$RUN_DIR/pids"
fi
if alive "$(pid_of "$RUN_DIR/slurmd.pid")"; then
  say "slurmd already running"
else
  slurmd || die "slurmd did not start; see /var/log/slurm/slurmd.log"
  for _ in $(seq 100); do [[ -s $RUN_DIR/slurmd.pid ]] && break; sleep 0.1; done
  echo "slurmd $(pid_of "$RUN_DIR/slurmd.pid")" >>"$RUN_DIR/pids"
fi

for i in $(seq 300); do
  state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
  idle* | mixed* | allocated*)
    say "node $host is $state"
    exit 0
    ;;
  down* | drain* | unknown*) [[ $((i % 20)) -eq 0 ]] && scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
  esac
  sleep 0.1
done
die "node $host did not become idle in 30 s (sinfo: ${state:-nothing}); see /var/log/slurm/slurmd.log"
