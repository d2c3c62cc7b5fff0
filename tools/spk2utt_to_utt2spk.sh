#!/usr/bin/env bash
# Kaldi's utils/spk2utt_to_utt2spk.pl: read spk2utt (a file or standard input), write utt2spk
# to standard output, one "<utt> <spk>" line per utterance in input order.
#
#   spk2utt_to_utt2spk.sh data/train/spk2utt > data/train/utt2spk
set -euo pipefail
if [ $# -gt 1 ]; then
  echo "Usage: $0 [<spk2utt>]  (writes utt2spk to standard output)" >&2
  exit 1
fi
LC_ALL=C awk '
  NF < 2 { printf "%s: line %d: expected \"<spk> <utt>...\", got \"%s\"\n", FILENAME, FNR, $0 > "/dev/stderr"; exit 1 }
  { for (i = 2; i <= NF; i++) print $i, $1 }
' "${1:--}"
