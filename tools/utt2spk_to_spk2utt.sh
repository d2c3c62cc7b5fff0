#!/usr/bin/env bash
# Kaldi's utils/utt2spk_to_spk2utt.pl: read utt2spk (a file or standard input), write spk2utt
# to standard output, speakers in order of first appearance, each speaker's utterances in input
# order.
#
#   utt2spk_to_spk2utt.sh data/train/utt2spk > data/train/spk2utt
set -euo pipefail
if [ $# -gt 1 ]; then
  echo "Usage: $0 [<utt2spk>]  (writes spk2utt to standard output)" >&2
  exit 1
fi
LC_ALL=C awk '
  NF != 2 { printf "%s: line %d: expected \"<utt> <spk>\", got \"%s\"\n", FILENAME, FNR, $0 > "/dev/stderr"; bad = 1; exit 1 }
  { if (!($2 in utts)) order[n++] = $2; utts[$2] = utts[$2] " " $1 }
  END { if (!bad) for (i = 0; i < n; i++) print order[i] utts[order[i]] }
' "${1:--}"
