#!/usr/bin/env bash
# Kaldi's utils/subset_data_dir.sh, through `asr data subset`.
#
#   subset_data_dir.sh [--first|--last|--shortest|--per-spk|--speakers] <srcdir> <num> <destdir>
#   subset_data_dir.sh --utt-list <utterance-list-file> <srcdir> <destdir>
#   subset_data_dir.sh --spk-list <speaker-list-file> <srcdir> <destdir>
#
# Without an option, <num> utterances spread evenly over the directory are taken. --per-spk
# takes <num> utterances of every speaker; --speakers takes whole speakers until there are at
# least <num> utterances. List files hold one id per line (extra fields are ignored).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
usage() {
  echo "Usage: $0 [--first|--last|--shortest|--per-spk|--speakers] <srcdir> <num> <destdir>" >&2
  echo "       $0 --utt-list <file> <srcdir> <destdir>" >&2
  echo "       $0 --spk-list <file> <srcdir> <destdir>" >&2
  exit 1
}
mode=--evenly
list=""
case "${1:-}" in
  --first|--last|--shortest|--per-spk|--speakers) mode=$1; shift ;;
  --utt-list|--spk-list) mode=$1; [ $# -ge 2 ] || usage; list=$2; shift 2 ;;
  --*) echo "$0: unknown option $1" >&2; usage ;;
esac
if [ -n "$list" ]; then
  [ $# -eq 2 ] || usage
  exec "$asr" data subset "$1" "$2" "$mode" "$list"
fi
[ $# -eq 3 ] || usage
exec "$asr" data subset "$1" "$3" "$mode" "$2"
