#!/usr/bin/env bash
# Install NIST's scoring toolkit (Debian package `sctk`), which provides `sclite`, the reference
# scorer that `asr score` is checked against (tests/test_score_sclite.py, `asr benchmark scoring`).
#
#   tools/install_sctk.sh
#
# Debian installs sclite as /usr/lib/sctk/bin/sclite (and the wrapper `sctk sclite`); the
# project finds it there or on PATH. Idempotent: does nothing when sclite is already present.
# Needs root (or password-less sudo) and apt-get; without them it says what to run, exit 1.
set -euo pipefail

debian_sclite=/usr/lib/sctk/bin/sclite

find_sclite() {
  command -v sclite 2>/dev/null || { [ -x "$debian_sclite" ] && echo "$debian_sclite"; } || true
}

found=$(find_sclite)
if [ -n "$found" ]; then
  echo "install_sctk.sh: sclite already installed ($found)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_sctk.sh: apt-get not found; build NIST SCTK (https://github.com/usnistgov/SCTK) and put 'sclite' on PATH" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install_sctk.sh: installing a Debian package needs root; run 'sudo apt-get install -y sctk' (or this script as root)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show sctk >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update
fi
"${sudo[@]}" apt-get install -y --no-install-recommends sctk
found=$(find_sclite)
if [ -z "$found" ]; then
  echo "install_sctk.sh: sctk installed but no sclite found (looked on PATH and at $debian_sclite)" >&2
  exit 1
fi
echo "install_sctk.sh: installed $found"
