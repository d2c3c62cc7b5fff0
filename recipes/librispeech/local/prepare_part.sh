#!/usr/bin/env bash
# One LibriSpeech part -> a Kaldi data dir, prepared by NJ jobs through $CMD (each job takes
# every NJ-th reader and reads the FLAC headers for utt2dur), then combined. Job outputs and
# logs: data/local/prep_<part>/.
#   local/prepare_part.sh CMD NJ CORPUS_DIR PART DATA_DIR
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 CMD NJ CORPUS_DIR PART DATA_DIR" >&2; exit 1; }
cmd=$1; nj=$2; corpus_dir=$3; part=$4; data=$5
work=$(dirname "$data")/local/prep_$part
rm -rf "$data" "$work"
$cmd JOB=1:"$nj" "$work/log/prep.JOB.log" \
  python -m asr.corpora.librispeech prepare --corpus-dir "$corpus_dir" --part "$part" \
    --out "$work/jobs/JOB" --job JOB --num-jobs "$nj"
parts=()
for ((j = 1; j <= nj; j++)); do
  [ -s "$work/jobs/$j/wav.scp" ] && parts+=("$work/jobs/$j")
done
[ ${#parts[@]} -gt 0 ] || { echo "$0: no utterances in $part" >&2; exit 1; }
combine_data.sh "$data" "${parts[@]}"
rm -rf "$work/jobs"
