#!/usr/bin/env bash
# Kaldi's yes/no corpus: 60 recordings of 8 Hebrew yes/no words, Kaldi's split (31 train,
# 29 test). A tiny BiLSTM-CTC over whole-word units (YES, NO); greedy decoding; WER on test.
#
#   ./run.sh [--stage N] [--stop-stage M] [--corpus-dir DIR] [--nj N]
#
# Stages: 0 data prep, 1 train, 2 decode (--nj parallel jobs through $decode_cmd) + score.
# A stage that finished leaves a .done marker and is skipped on a rerun; one that failed is
# redone from scratch.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${YESNO_DIR:-../../../shared/data/yesno}   # holds waves_yesno/ (or $YESNO_DIR)
exp=exp/bilstm_ctc
nj=1                  # decoding jobs (one speaker here: split per utterance when nj > 1)
allow_pipes=false     # true: run commands ('cmd |') found in wav.scp
help_message="Usage: $0 [options]   (yes/no word recognition)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

$allow_pipes && export ASR_ALLOW_PIPES=1

log() { echo "$(date '+%H:%M:%S') [yesno] $*"; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.done ]; then
  log "stage 0: data preparation from $corpus_dir"
  rm -rf data
  python -m asr.corpora.yesno --corpus-dir "$corpus_dir" --out data
  for set in train test; do validate_data_dir.sh --no-feats data/$set; done
  touch data/.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f $exp/.done ]; then
  log "stage 1: training (log: $exp/train.log)"
  rm -rf $exp/decode_*  # decodes of an earlier model are no longer valid
  # No dev set in Kaldi's split: model selection on the training loss.
  train.sh $exp $train_cmd $exp/log/train.log \
    asr train --train data/train --exp-dir $exp --config conf/train.yaml --no-progress
  touch $exp/.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ ! -f $exp/decode_test/.done ]; then
  log "stage 2: decoding data/test ($nj job(s); logs: $exp/decode_test/log)"
  rm -rf $exp/decode_test
  decode.sh --nj $nj --cmd "$decode_cmd" $exp/final data/test $exp/decode_test
  touch $exp/decode_test/.done
fi
if [ $stop_stage -ge 2 ] && [ -f $exp/decode_test/wer ]; then
  cat $exp/decode_test/wer
fi
log "done"
