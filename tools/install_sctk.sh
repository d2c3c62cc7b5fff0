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
. "$(dirname "$0")/apt_lib.sh"

debian_sclite=/usr/lib/sctk/bin/sclite

find_sclite() {
  command -v sclite 2>/dev/null || { [ -x "$debian_sclite" ] && echo "$debian_sclite"; } || true
}

found=$(find_sclite)
if [ -n "$found" ]; then
  echo "install_sctk.sh: sclite already installed ($found)"
  exit 0
fi
apt_install install_sctk.sh sctk
found=$(find_sclite)
if [ -z "$found" ]; then
  echo "install_sctk.sh: sctk installed but no sclite found (looked on PATH and at $debian_sclite)" >&2
  exit 1
fi
echo "install_sctk.sh: installed $found"
