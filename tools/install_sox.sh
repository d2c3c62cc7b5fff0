#!/usr/bin/env bash
# Install sox (Debian package `sox`). The toolkit does not need it: Kaldi's
# `sox ... speed F |` lines in wav.scp are applied in process. It is used to check that
# in-process speed perturbation matches sox's own (tests/test_data_perturb_sox.py, skipped
# without sox) and by Kaldi's scripts if you run them on the same data.
#
#   tools/install_sox.sh
#
# Idempotent. Needs root (or password-less sudo) and apt-get; without them it says what to run.
set -euo pipefail
if command -v sox >/dev/null 2>&1; then
  echo "install_sox.sh: sox already installed ($(command -v sox))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_sox.sh: apt-get not found; install sox with your package manager" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "install_sox.sh: needs root; run: sudo apt-get install -y sox" >&2
  exit 1
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq sox >/dev/null
echo "install_sox.sh: installed $(command -v sox)"
