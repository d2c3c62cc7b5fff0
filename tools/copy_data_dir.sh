#!/usr/bin/env bash
# Kaldi's utils/copy_data_dir.sh, through `asr data copy`.
#
#   copy_data_dir.sh [--utt-prefix P] [--spk-prefix P] [--utt-suffix S] [--spk-suffix S] \
#       <srcdir> <destdir>
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --utt-prefix|--spk-prefix|--utt-suffix|--spk-suffix)
      [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 1; }
      opts+=("$1=$2"); shift 2 ;;  # "=" keeps values such as "-sp" from looking like options
    --validate-opts) shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 2 ]; then
  echo "Usage: $0 [--utt-prefix P] [--spk-prefix P] [--utt-suffix S] [--spk-suffix S] <srcdir> <destdir>" >&2
  exit 1
fi
exec "$asr" data copy "${opts[@]}" "$1" "$2"
