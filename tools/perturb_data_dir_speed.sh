#!/usr/bin/env bash
# Kaldi's utils/perturb_data_dir_speed.sh, through `asr data perturb-speed`.
#
#   perturb_data_dir_speed.sh <warping-factor> <srcdir> <destdir>
#
# Writes Kaldi's own lines (ids prefixed sp<factor>-, wav.scp entries ending in
# "sox ... speed <factor> |"); the toolkit applies that sox step in process, so neither sox
# nor --allow-pipes is needed to read the result.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
while [ $# -gt 0 ]; do
  case "$1" in
    --include-spk-prefix)
      [ "$2" = true ] || { echo "$0: only --include-spk-prefix true is supported" >&2; exit 1; }
      shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 3 ]; then
  echo "Usage: $0 <warping-factor> <srcdir> <destdir>" >&2
  exit 1
fi
if [ "$2" = "$3" ]; then
  echo "$0: <srcdir> and <destdir> must differ" >&2
  exit 1
fi
exec "$asr" data perturb-speed "$1" "$2" "$3"
