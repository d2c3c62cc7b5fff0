#!/usr/bin/env bash
# Every GPU figure of docs/benchmarks.md in one command (about 5 minutes on one H100/H200):
#
#   tools/gpu_report.sh [--device cuda|cpu|auto] [--out DIR] [--quick] [--fsdd DIR] [--model DIR]
#
# FSDD: --fsdd DIR, else $FSDD_DIR, else ../shared/data/fsdd beside the checkout.
# Runs `asr benchmark all` with the same options (see `asr benchmark all --help`) and writes
# DIR/gpu_report.md, DIR/gpu_report.json and DIR/gpu_report.log. Uses the project's .venv when
# there is one, else python3 with the project on PYTHONPATH (it need not be installed). When
# librosa, jiwer, soundfile or flashlight-text cannot be imported and there is no package index,
# it installs them from wheels in .whl/ (fetched beforehand where pip can download, e.g. with
# `bash ../shared/tools/device-wheels.sh`) into $GPU_REPORT_SITE (default /tmp/asr-site).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; else python=python3; fi
fi
needed='import librosa, jiwer, soundfile, kaldiio, flashlight.lib.text'
if ! "$python" -c "$needed" 2>/dev/null; then
  if ! compgen -G "$root/.whl/*.whl" >/dev/null; then
    echo "gpu_report.sh: librosa, jiwer, soundfile, kaldiio or flashlight-text is missing and" \
      "$root/.whl/ has no wheels; pip install -e '$root', or fetch the wheels into .whl/" >&2
    exit 1
  fi
  site=${GPU_REPORT_SITE:-/tmp/asr-site}
  echo "gpu_report.sh: installing $(ls "$root"/.whl/*.whl | wc -l) wheels from .whl/ into $site" >&2
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" "$root"/.whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  "$python" -c "$needed" || { echo "gpu_report.sh: still missing after installing .whl/" >&2; exit 1; }
fi
# The corpus beside the checkout, as the recipes find it, unless --fsdd or $FSDD_DIR says.
if [ -z "${FSDD_DIR:-}" ] && [ -d "$root/../shared/data/fsdd/recordings" ]; then
  FSDD_DIR=$(cd "$root/../shared/data/fsdd" && pwd)
  export FSDD_DIR
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# The checkout's own parts of the report: its gpu-marked tests and the digits GPU preset.
exec "$python" -m asr.cli.main benchmark all --tests "$root/tests" \
  --train-config "$root/recipes/digits/conf/gpu.yaml" "$@"
