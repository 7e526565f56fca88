#!/usr/bin/env bash
# The full test: static checks, unit tests, then every notebook at smoke scale.
# Ends with one line "N passed, N failed" (checks + deno tests + notebooks) and a non-zero exit
# if anything failed. Every stage runs even when an earlier one fails, so one run shows it all.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
# Plain output we can parse; the backend is chosen automatically, as a user would get it.
export NO_COLOR=1
unset BKD_BACKEND

passed=0
failed=0
log=$(mktemp)
# tests/slurm_test.ts starts a Slurm cluster and stops it itself; if the tests die before that, the
# daemons it recorded are stopped here (by pid, see tools/slurm/stop.sh).
trap 'rm -f "$log"; [[ -f ${BKD_SLURM_RUN:-/run/bkd-slurm}/pids ]] && bash tools/slurm/stop.sh >/dev/null; true' EXIT

section() { printf '\n=== %s\n' "$*"; }

# --- (a) static checks over the source directories that exist --------------------------------
dirs=()
for d in lib tests tools bench; do [[ -d $d ]] && dirs+=("$d"); done
check() { # check <name> <command...>: one pass or one fail
  local name=$1
  shift
  section "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED: $name"
  fi
}
check "deno fmt --check" deno fmt --check "${dirs[@]}"
check "deno lint" deno lint "${dirs[@]}"
check "deno check" deno check "${dirs[@]}"

# --- (b) unit tests -----------------------------------------------------------------------------
section "deno test -A tests/"
set +e
deno test -A tests/ 2>&1 | tee "$log"
test_rc=${PIPESTATUS[0]}
set -e
# Deno's summary: "ok | 12 passed | 0 failed (3s)" or "FAILED | 11 passed (2 steps) | 1 failed (3s)".
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n1 || true)
if [[ -n "$summary" ]]; then
  passed=$((passed + $(sed -E 's/^[A-Z a-z]+\| ([0-9]+) passed.*/\1/' <<<"$summary")))
  failed=$((failed + $(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")))
elif [[ $test_rc -ne 0 ]]; then
  failed=$((failed + 1)) # crashed before a summary (e.g. a type error): count the run as one failure
  echo "FAILED: deno test exited $test_rc without a summary"
fi
# A non-zero exit with a clean summary (e.g. leaked resources, uncaught error) must still fail.
if [[ -n "$summary" && $test_rc -ne 0 && "$summary" == ok* ]]; then
  failed=$((failed + 1))
  echo "FAILED: deno test exited $test_rc"
fi

# --- (c) notebooks at smoke scale -------------------------------------------------------------
section "notebooks (smoke)"
shopt -s nullglob
notebooks=(notebooks/*.ipynb)
if [[ ${#notebooks[@]} -eq 0 ]]; then
  echo "no notebooks in notebooks/, skipping"
else
  set +e
  # A per-cell timeout keeps a hung smoke cell from hanging CI (smoke cells take seconds).
  deno run -A tools/notebooks.ts run --scale smoke --timeout 900 "${notebooks[@]}" 2>&1 | tee "$log"
  nb_rc=${PIPESTATUS[0]}
  set -e
  # notebooks.ts ends with "notebooks: N ok, M failed (scale smoke)".
  nb_summary=$(grep -E '^notebooks: [0-9]+ ok, [0-9]+ failed' "$log" | tail -n1 || true)
  if [[ -n "$nb_summary" ]]; then
    passed=$((passed + $(sed -E 's/^notebooks: ([0-9]+) ok.*/\1/' <<<"$nb_summary")))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$nb_summary")))
  fi
  if [[ $nb_rc -ne 0 && ( -z "$nb_summary" || "$nb_summary" == *" 0 failed"* ) ]]; then
    failed=$((failed + 1)) # the runner itself broke
    echo "FAILED: tools/notebooks.ts exited $nb_rc"
  fi
fi

echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
