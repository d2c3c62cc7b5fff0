#!/usr/bin/env bash
# Decode a data directory with N parallel jobs and score it once (Kaldi's steps/decode.sh).
#
#   tools/decode.sh [--nj N] [--cmd LAUNCHER] [--batch-size B] [--device D]
#                   [--decode-opts "OPTIONS"] MODEL DATA OUT
#
# --decode-opts: further `asr decode` options for every job, e.g. "--decoder beam --beam-size 100".
#
# DATA is split by speaker into DATA/splitN/{1..N} (per utterance, DATA/splitNutt, when it has
# fewer speakers than jobs); each part is decoded by `asr decode` through
# `$cmd JOB=1:N OUT/log/decode.JOB.log ...`; the hypotheses of the parts are merged in
# utterance order into OUT/text and, when DATA has a text file, scored once: OUT/wer (Kaldi's
# lines), OUT/per_spk, OUT/score.json, OUT/scoring.txt (the whole report). Part outputs stay
# in OUT/part/JOB.
set -euo pipefail
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nj=1
cmd=$tools/run_local.sh
batch_size=32
device=auto
decode_opts=""
help_message="Usage: $0 [options] <model> <data-dir> <out-dir>"
. "$tools/parse_options.sh"
if [ $# -ne 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
model=$1; data=$2; dir=$3
. "$tools/asr_path.sh"
for f in utt2spk spk2utt; do
  [ -f "$data/$f" ] || { echo "$0: $data/$f not found (run fix_data_dir.sh $data)" >&2; exit 1; }
done

nspk=$(wc -l < "$data/spk2utt")
nutt=$(wc -l < "$data/utt2spk")
split_opts=()
if [ "$nspk" -lt "$nj" ]; then
  [ "$nutt" -lt "$nj" ] && nj=$nutt
  echo "$0: $data has $nspk speaker(s) for $nj job(s): splitting per utterance" >&2
  split_opts=(--per-utt)
fi
sdata=$data/split$nj${split_opts:+utt}
"$tools/split_data.sh" "${split_opts[@]}" "$data" "$nj"

# Nothing from an earlier run may be mistaken for this one's output.
rm -rf "$dir/part" "$dir/text" "$dir/wer" "$dir/per_spk" "$dir/score.json" "$dir/scoring.txt"
mkdir -p "$dir/log"
$cmd JOB=1:"$nj" "$dir/log/decode.JOB.log" \
  "$asr" decode --model "$model" --data "$sdata/JOB" --out "$dir/part/JOB" \
    --batch-size "$batch_size" --device "$device" $decode_opts

parts=()
for ((j = 1; j <= nj; j++)); do
  [ -f "$dir/part/$j/text" ] || { echo "$0: $dir/part/$j/text missing; see $dir/log/decode.$j.log" >&2; exit 1; }
  parts+=("$dir/part/$j/text")
done
LC_ALL=C sort -m -k1,1 "${parts[@]}" > "$dir/text.tmp"
mv "$dir/text.tmp" "$dir/text"

if [ -f "$data/text" ]; then
  "$asr" score --ref "$data/text" --hyp "$dir/text" --utt2spk "$data/utt2spk" \
    --json "$dir/score.json.tmp" > "$dir/scoring.tmp"
  # The report: Kaldi's %WER/%SER/%CER lines, then (after a blank line) the speaker table.
  grep '^%' "$dir/scoring.tmp" > "$dir/wer"
  sed '1,/^$/d' "$dir/scoring.tmp" | sed '/^$/,$d' > "$dir/per_spk"  # the speaker table only
  mv "$dir/scoring.tmp" "$dir/scoring.txt"
  mv "$dir/score.json.tmp" "$dir/score.json"
fi
