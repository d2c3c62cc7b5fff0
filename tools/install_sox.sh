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
. "$(dirname "$0")/apt_lib.sh"

if command -v sox >/dev/null 2>&1; then
  echo "install_sox.sh: sox already installed ($(command -v sox))"
  exit 0
fi
apt_install install_sox.sh sox
echo "install_sox.sh: installed $(command -v sox)"
