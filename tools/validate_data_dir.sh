#!/usr/bin/env bash
# Kaldi's utils/validate_data_dir.sh, through `asr data validate` (every problem is reported,
# each with its file and line, not just the first).
#
#   validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] <data-dir>
#
# As in Kaldi, feats.scp, text and wav.scp are required unless the matching --no-xxx option is
# given (present files are always checked), and utt2spk must be sorted by speaker as well as
# by utterance unless --no-spk-sort. Exit status 0 when valid, 1 otherwise.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
opts=(--require-feats)
while [ $# -gt 0 ]; do
  case "$1" in
    --no-feats) opts=("${opts[@]/--require-feats}"); shift ;;
    --no-text|--no-wav|--no-spk-sort) opts+=("$1"); shift ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then
  echo "Usage: $0 [--no-feats] [--no-text] [--no-wav] [--no-spk-sort] <data-dir>" >&2
  exit 1
fi
args=()
for o in "${opts[@]}"; do [ -n "$o" ] && args+=("$o"); done
exec "$asr" data validate "${args[@]}" "$1"
