#!/usr/bin/env bash
# Connected digits on the Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0):
# BiLSTM-CTC over characters, greedy decoding, WER on connected-digit test utterances built
# only from the dataset's official test takes (0-4).
#
#   ./run.sh [--stage N] [--stop-stage M] [--corpus-dir DIR] [--preset cpu|gpu|auto] [--nj N]
#            [--exp DIR] [--train-opts "--set train.seed=2"] [--model-name NAME]
#
# Stages: 0 data prep (download when absent), 1 train, 2 decode (--nj parallel jobs through
# $decode_cmd, split by speaker) + score, 3 install the model into the model store as 'digits'
# (the default model of `transcribe`). A stage that finished leaves a .done marker and is
# skipped on a rerun; one that failed is redone from scratch (training resumes from its newest
# checkpoint).
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${FSDD_DIR:-../../../shared/data/fsdd}   # or $FSDD_DIR; downloaded when absent
preset=auto           # cpu, gpu, or auto (gpu when CUDA is usable)
exp=exp/bilstm_ctc
model_name=digits
nj=2                  # decoding jobs
train_opts=""         # extra `asr train` options, e.g. "--set train.seed=2"
allow_pipes=false     # true: run commands ('cmd |') found in wav.scp
help_message="Usage: $0 [options]   (connected-digit recognition on FSDD)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

$allow_pipes && export ASR_ALLOW_PIPES=1

if [ "$preset" = auto ]; then
  preset=$(python -c 'import torch; print("gpu" if torch.cuda.is_available() else "cpu")')
fi
case "$preset" in
  cpu) model_conf=$ASR_ROOT/conf/model/small_cpu.yaml ;;
  gpu) model_conf=$ASR_ROOT/conf/model/ctc_3l_250h.yaml ;;
  *) echo "$0: --preset must be cpu, gpu or auto, not '$preset'" >&2; exit 1 ;;
esac
log() { echo "$(date '+%H:%M:%S') [digits] $*"; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.done ]; then
  log "stage 0: data preparation from $corpus_dir"
  rm -rf data
  local/prepare_data.sh "$corpus_dir" data downloads
  for set in train dev test test_isolated; do validate_data_dir.sh --no-feats data/$set; done
  touch data/.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f $exp/.done ]; then
  log "stage 1: training ($preset preset; log: $exp/train.log)"
  rm -rf $exp/decode_*  # decodes of an earlier model are no longer valid
  start=$SECONDS
  # shellcheck disable=SC2086  # train_opts is a list of options
  train.sh $exp $train_cmd $exp/log/train.log \
    asr train --train data/train --dev data/dev --exp-dir $exp --no-progress \
      --config "$ASR_ROOT/conf/features/logmel40_8k.yaml" --config "$model_conf" \
      --config conf/$preset.yaml $train_opts
  echo $((SECONDS - start)) > $exp/train_seconds
  touch $exp/.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for set in dev test test_isolated; do
    dir=$exp/decode_$set
    if [ ! -f $dir/.done ]; then
      log "stage 2: decoding data/$set ($nj jobs; logs: $dir/log)"
      rm -rf $dir
      decode.sh --nj $nj --cmd "$decode_cmd" $exp/final data/$set $dir
      touch $dir/.done
    fi
    echo "$set: $(head -n 1 $dir/wer)"
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: installing $exp/final as '$model_name' (default model)"
  asr models install $exp/final --name $model_name --default
fi
log "done"
