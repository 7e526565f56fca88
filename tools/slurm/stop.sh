#!/usr/bin/env bash
# Stop the daemons tools/slurm/start.sh started, by the pids it recorded (never by name), then
# forget them. Safe to run twice.
set -uo pipefail

RUN_DIR=${BKD_SLURM_RUN:-/run/bkd-slurm}
PIDS=$RUN_DIR/pids
[[ -f $PIDS ]] || {
  echo "slurm-stop: nothing recorded in $PIDS"
  exit 0
}
# Newest first: slurmd, slurmctld, then munged.
tac "$PIDS" | while read -r name pid; do
  [[ -n "${pid:-}" ]] || continue
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    echo "slurm-stop: stopped $name ($pid)"
  fi
done
rm -f "$PIDS"
