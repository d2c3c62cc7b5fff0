#!/usr/bin/env bash
# Kaldi's yes/no corpus: 60 recordings of 8 Hebrew yes/no words, Kaldi's split (31 train,
# 29 test). A tiny BiLSTM-CTC over characters; greedy decoding; WER on the test set.
#
#   ./run.sh [--stage N] [--stop-stage M] [--corpus-dir DIR]
#
# Stages: 0 data prep, 1 train, 2 decode + score.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${YESNO_DIR:-../../../shared/data/yesno}   # holds waves_yesno/ (or $YESNO_DIR)
exp=exp/bilstm_ctc
help_message="Usage: $0 [options]   (yes/no word recognition)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

log() { echo "$(date '+%H:%M:%S') [yesno] $*"; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.done ]; then
  log "stage 0: data preparation from $corpus_dir"
  rm -rf data
  python -m asr.corpora.yesno --corpus-dir "$corpus_dir" --out data
  touch data/.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f $exp/.done ]; then
  log "stage 1: training (log: $exp/train.log)"
  # No dev set in Kaldi's split: model selection on the training loss.
  $train_cmd $exp/log/train.log \
    asr train --train data/train --exp-dir $exp --config conf/train.yaml --no-progress
  touch $exp/.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: decoding data/test"
  $decode_cmd $exp/decode_test/log/decode.log \
    asr decode --model $exp/final --data data/test --out $exp/decode_test
  cat $exp/decode_test/wer
fi
log "done"
