#!/usr/bin/env bash
# Kaldi's utils/fix_data_dir.sh, through `asr data fix`: repairs the data directory in place
# (sorting, line endings, spk2utt, files that disagree about which utterances exist) and says
# what it dropped, with counts. The original files are kept in <data-dir>/.backup.
#
#   fix_data_dir.sh <data-dir>
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/asr_path.sh"
if [ $# -ne 1 ] || [[ "$1" == --* ]]; then
  echo "Usage: $0 <data-dir>" >&2
  exit 1
fi
exec "$asr" data fix "$1"
