#!/usr/bin/env bash
# Kaldi's utils/split_data.sh, through `asr data split`: writes <data-dir>/split<N>/{1..N}
# (split<N>utt with --per-utt). By default each speaker stays in one part, and there must be
# at least <N> speakers.
#
#   split_data.sh [--per-utt] <data-dir> <num-to-split>
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --per-utt) opts+=(--per-utt); shift ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then
  echo "Usage: $0 [--per-utt] <data-dir> <num-to-split>" >&2
  exit 1
fi
"$asr" data split "${opts[@]}" "$1" "$2" >/dev/null
