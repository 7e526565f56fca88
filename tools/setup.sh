#!/usr/bin/env bash
# Install everything boundary-kd needs on a fresh Debian 12 machine with Node 20 + npm:
#   deno 2.9.6 (npm), Jupyter + nbclient + Fashion-MNIST + g++ + Chromium + MathJax + Slurm/munge (apt), the npm dependencies
#   (deno install).
# Idempotent: each step checks first, so a second run only checks and says "already installed".
# Network: only the npm registry and Debian's apt mirrors are used.
set -euo pipefail

DENO_VERSION=2.9.6
# g++ builds the native teacher engine (lib/native/forward.cpp) at first use; usually preinstalled.
# chromium checks the static report in tests/report_test.ts; libjs-mathjax renders its maths offline.
# slurm-wlm + munge: the single-node Slurm cluster tests/slurm_test.ts starts (tools/slurm/start.sh).
APT_PACKAGES=(jupyter-core jupyter-client python3-nbclient python3-nbformat jupyter-nbconvert
  dataset-fashion-mnist g++ chromium libjs-mathjax slurm-wlm munge)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SUMMARY=()
t_start=$SECONDS

say() { echo "setup: $*"; }
die() {
  echo "setup: error: $*" >&2
  exit 1
}

# Several people may share this checkout: serialise setups so two `deno install`s (or apt runs)
# never race. The lock lives outside the repo so it needs no .gitignore entry.
if command -v flock >/dev/null 2>&1 && [[ -z "${BKD_SETUP_LOCKED:-}" ]]; then
  lock="${TMPDIR:-/tmp}/bkd-setup-$(echo "$REPO" | cksum | cut -d' ' -f1).lock"
  exec 9>"$lock"
  flock 9
  export BKD_SETUP_LOCKED=1
fi

# Run a command as root: directly when we are root, else through passwordless sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    die "need root (or passwordless sudo) to run: $*
  install these Debian packages yourself, then rerun: ${missing[*]}"
  fi
}

# --- 1. deno ----------------------------------------------------------------------------------
deno_version() { deno --version 2>/dev/null | head -n1 | awk '{print $2}'; }
if [[ "$(deno_version || true)" == "$DENO_VERSION" ]]; then
  SUMMARY+=("deno $DENO_VERSION: already installed")
else
  command -v npm >/dev/null 2>&1 || die "npm not found; install Node 20 + npm, or deno $DENO_VERSION"
  say "installing deno@$DENO_VERSION with npm (global)"
  npm install -g --no-audit --no-fund "deno@$DENO_VERSION" >/dev/null
  # npm's global bin may not be on PATH for this shell yet.
  PATH="$(npm prefix -g)/bin:$PATH"
  [[ "$(deno_version || true)" == "$DENO_VERSION" ]] ||
    die "deno $DENO_VERSION installed but '$(command -v deno || echo deno)' reports '$(deno_version || true)'; put $(npm prefix -g)/bin first on PATH"
  SUMMARY+=("deno $DENO_VERSION: installed via npm")
fi

# --- 2. Debian packages -----------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  SUMMARY+=("apt: ${#APT_PACKAGES[@]} packages already installed")
else
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install: ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  # Recommends would pull pandoc/TeX for nbconvert; the kit needs none of it. The lock timeout
  # waits for another apt run on this machine instead of failing.
  apt_opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install "${missing[@]}" >/dev/null
  SUMMARY+=("apt: installed ${missing[*]}")
fi
# nbclient must be importable by Debian's python (a pyenv python3 on PATH cannot see it).
/usr/bin/python3 -c 'import nbclient, nbformat' 2>/dev/null ||
  die "/usr/bin/python3 cannot import nbclient/nbformat; reinstall python3-nbclient python3-nbformat"

# --- 3. npm dependencies ----------------------------------------------------------------------
# The stamp records what node_modules was installed from; unchanged inputs mean nothing to do.
stamp_file=node_modules/.bkd-setup-stamp
stamp() { cat package.json deno.lock 2>/dev/null | cksum | cut -d' ' -f1; }
if [[ -d node_modules && -f "$stamp_file" && "$(cat "$stamp_file")" == "$(stamp)" ]]; then
  SUMMARY+=("npm deps: already installed (package.json + deno.lock unchanged)")
else
  say "installing npm dependencies (deno install)"
  deno install --quiet
  stamp >"$stamp_file" # after install: deno may have updated deno.lock
  SUMMARY+=("npm deps: installed into node_modules/")
fi

for line in "${SUMMARY[@]}"; do say "$line"; done
say "done in $((SECONDS - t_start)) s"
