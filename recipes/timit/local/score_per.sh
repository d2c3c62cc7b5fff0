#!/usr/bin/env bash
# PER on Lee & Hon's 39 phone classes: fold reference and hypotheses (61 phones) to 39, drop
# the glottal stop, and score the phones as words with `asr score`.
#   local/score_per.sh DATA_DIR DECODE_DIR      -> DECODE_DIR/per (Kaldi lines), scoring39.txt
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 DATA_DIR DECODE_DIR" >&2; exit 1; }
data=$1; dir=$2
python -m asr.corpora.timit fold39 "$data/text" "$dir/ref39.txt" "$dir/text" "$dir/hyp39.txt"
asr score --ref "$dir/ref39.txt" --hyp "$dir/hyp39.txt" --utt2spk "$data/utt2spk" \
  --json "$dir/score39.json" > "$dir/scoring39.tmp"
mv "$dir/scoring39.tmp" "$dir/scoring39.txt"
grep '^%WER' "$dir/scoring39.txt" | sed 's/^%WER/%PER/' > "$dir/per"
