#!/usr/bin/env bash
# Kaldi's steps/make_fbank.sh / make_mfcc.sh for this toolkit: dump the features of a data
# directory in --nj jobs through a launcher (tools/run_local.sh, tools/run_slurm.sh), each job
# running `asr data compute-features` on one part of split_data.sh, then merge feats.scp,
# utt2num_frames and cmvn.scp back into the data directory in order.
#
#   make_feats.sh [--nj N] [--cmd LAUNCHER] [--feat-config A.yaml[,B.yaml]] [--cmvn none|speaker|utterance]
#                 [--device cpu|cuda|auto] <data-dir> [<log-dir> [<ark-dir>]]
#
# <log-dir> defaults to <data-dir>/log, <ark-dir> to <data-dir>/data. Global CMVN is computed by
# `asr train` itself (features.cmvn: global); per-speaker statistics need whole speakers in each
# part, which split_data.sh guarantees.
set -euo pipefail
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nj=4
cmd=$tools/run_local.sh
feat_config=""   # feature YAML files, comma-separated when several (merged in order)
cmvn=none
device=cpu
help_message="Usage: $0 [options] <data-dir> [<log-dir> [<ark-dir>]]"
. "$tools/parse_options.sh"
if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "$help_message" >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
arkdir=${3:-$data/data}
. "$tools/asr_path.sh"
case "$cmvn" in
  none|speaker|utterance) ;;
  *) echo "$0: --cmvn must be none, speaker or utterance, not '$cmvn' (global statistics come from asr train)" >&2; exit 1 ;;
esac
for f in wav.scp utt2spk spk2utt; do
  [ -f "$data/$f" ] || { echo "$0: $data/$f not found (run fix_data_dir.sh $data)" >&2; exit 1; }
done

nspk=$(wc -l < "$data/spk2utt")
nutt=$(wc -l < "$data/utt2spk")
split_opts=()
if [ "$nspk" -lt "$nj" ]; then
  if [ "$cmvn" = speaker ]; then
    nj=$nspk
  else
    [ "$nutt" -lt "$nj" ] && nj=$nutt
    split_opts=(--per-utt)
  fi
fi
sdata=$data/split$nj${split_opts:+utt}
"$tools/split_data.sh" "${split_opts[@]}" "$data" "$nj"

config_opts=()
IFS=, read -r -a configs <<< "$feat_config"
for c in "${configs[@]}"; do config_opts+=(--config "$c"); done
mkdir -p "$logdir" "$arkdir"
arkdir=$(cd "$arkdir" && pwd)
rm -f "$data/feats.scp" "$data/utt2num_frames" "$data/cmvn.scp" "$data/frame_shift" "$data/feats.yaml"
$cmd JOB=1:"$nj" "$logdir/make_feats.JOB.log" \
  "$asr" data compute-features "$sdata/JOB" "${config_opts[@]}" --cmvn "$cmvn" \
    --device "$device" --ark-dir "$arkdir"

merge() {  # merge one per-part file (sorted by utterance) into the data directory
  local name=$1 parts=() j
  for ((j = 1; j <= nj; j++)); do
    [ -f "$sdata/$j/$name" ] || { echo "$0: $sdata/$j/$name missing; see $logdir/make_feats.$j.log" >&2; exit 1; }
    parts+=("$sdata/$j/$name")
  done
  LC_ALL=C sort -m -k1,1 "${parts[@]}" > "$data/$name.tmp"
  mv "$data/$name.tmp" "$data/$name"
}
merge feats.scp
merge utt2num_frames
[ "$cmvn" = none ] || merge cmvn.scp
cp "$sdata/1/frame_shift" "$sdata/1/feats.yaml" "$data/"
echo "$0: $(wc -l < "$data/feats.scp") of $nutt utterances in $data/feats.scp ($nj jobs, logs in $logdir)"
