#!/usr/bin/env bash
# Kaldi's utils/combine_data.sh, through `asr data combine`.
#
#   combine_data.sh <dest-data-dir> <src-data-dir1> <src-data-dir2> ...
#
# Files present in only some sources are left out (with a message), except segments (sources
# without one get whole-recording segments) and utt2uniq (identity for sources without one).
# Ids must be unique across the sources. --extra-files and --skip-fix are accepted and ignored.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --extra-files|--skip-fix) shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "Usage: $0 <dest-data-dir> <src-data-dir1> <src-data-dir2> ..." >&2
  exit 1
fi
exec "$asr" data combine "$@"
