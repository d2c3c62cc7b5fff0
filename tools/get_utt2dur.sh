#!/usr/bin/env bash
# Kaldi's utils/data/get_utt2dur.sh, through `asr data get-durations`: writes <data-dir>/utt2dur
# (and reco2dur when there is a segments file) from the audio headers.
#
#   get_utt2dur.sh <data-dir>
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --nj|--cmd|--read-entire-file) shift 2 ;;  # headers are read in one process
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then
  echo "Usage: $0 <data-dir>" >&2
  exit 1
fi
"$asr" data get-durations "$1" >/dev/null
