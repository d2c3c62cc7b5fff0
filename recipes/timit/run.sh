#!/usr/bin/env bash
# TIMIT phone recognition as in Graves, Mohamed & Hinton (2013), "Speech Recognition with Deep
# Recurrent Neural Networks": 462 training speakers without SA sentences, the 50-speaker dev
# set, the 24-speaker core test set; 123-dim fbank + energy + deltas normalised on the
# training set; deep BiLSTM-CTC over 61 phones (CTC-3l-250h or CTC-5l-250h); SGD 1e-4 with
# momentum 0.9 per utterance, early stopping on dev, then a weight-noise phase from the best
# phase-1 point; prefix beam search (beam 100); PER on the 39 folded classes of Lee & Hon.
# Targets (paper, Table 1): 18.6 % (CTC-3l-250h), 18.4 % (CTC-5l-250h) test PER.
#
#   ./run.sh [--stage N] [--stop-stage M] --corpus-dir DIR [--preset 3l|5l] [--cell peephole|lstm] [--nj N]
#
# Stages: 0 data prep, 1 phase-1 training, 2 weight-noise training (from phase 1's best),
# 3 beam decoding of dev and test (--nj jobs through $decode_cmd) and PER scoring, 4 the
# results table (exp/results.md). A stage that finished leaves a .done marker and is skipped on
# a rerun; one that failed is redone (training resumes from its newest checkpoint).
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${TIMIT_DIR:-}   # TIMIT (LDC93S1): the directory holding TRAIN/ and TEST/
preset=3l             # 3l: CTC-3l-250h, 5l: CTC-5l-250h
cell=peephole         # peephole: the paper's LSTM cell; lstm: cuDNN's cell (faster, no peepholes)
beam=100              # beam width (the paper's)
nj=4                  # decoding jobs
phases="phase1 phase2"  # the training phases whose models stage 3 decodes
train_opts=""         # extra `asr train` options for both phases, e.g. "--set train.device=cuda"
help_message="Usage: $0 [options]   (TIMIT phone recognition, Graves et al. 2013)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

case "$preset" in
  3l|5l) ;;
  *) echo "$0: --preset must be 3l or 5l, not '$preset'" >&2; exit 1 ;;
esac
case "$cell" in
  peephole|lstm) ;;
  *) echo "$0: --cell must be peephole or lstm, not '$cell'" >&2; exit 1 ;;
esac
exp=exp/ctc_${preset}_250h
[ "$cell" = peephole ] || exp=${exp}_$cell
log() { echo "$(date '+%H:%M:%S') [timit] $*"; }

# Features, model and training presets of the toolkit, then this recipe's settings.
configs=(--config "$ASR_ROOT/conf/features/graves123_16k.yaml"
         --config "$ASR_ROOT/conf/model/ctc_${preset}_250h.yaml" --set "model.cell=$cell")

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.done ]; then
  if [ -z "$corpus_dir" ]; then
    echo "$0: TIMIT is licensed (LDC93S1) and not downloadable: pass --corpus-dir DIR or set \$TIMIT_DIR" >&2
    exit 1
  fi
  log "stage 0: data preparation from $corpus_dir"
  rm -rf data
  local/prepare_data.sh "$corpus_dir" data
  for set in train dev test; do validate_data_dir.sh --no-feats data/$set; done
  touch data/.done
fi

# train_phase NAME TRAIN_CONF [asr train options]: one training phase into $exp/NAME.
train_phase() {
  local name=$1 conf=$2; shift 2
  local dir=$exp/$name start=$SECONDS
  log "training $dir ($conf; log: $dir/train.log)"
  rm -rf "$exp"/decode_*  # decodes of an earlier model are no longer valid
  # shellcheck disable=SC2086  # train_opts is a list of options
  train.sh "$dir" $train_cmd "$dir/log/train.log" \
    asr train --train data/train --dev data/dev --exp-dir "$dir" --no-progress \
      "${configs[@]}" --config "$ASR_ROOT/conf/train/$conf.yaml" --config conf/timit.yaml \
      "$@" $train_opts
  echo $((SECONDS - start)) > "$dir/train_seconds"
}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f $exp/phase1/.done ]; then
  log "stage 1: phase 1 (SGD, early stopping on dev)"
  train_phase phase1 graves_phase1
  touch $exp/phase1/.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ ! -f $exp/phase2/.done ]; then
  log "stage 2: phase 2 (weight noise 0.075 from phase 1's best point)"
  train_phase phase2 graves_phase2_noise --init-from $exp/phase1
  touch $exp/phase2/.done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for phase in $phases; do
    [ -d $exp/$phase/final ] || { echo "$0: $exp/$phase/final missing (run stages 1-2)" >&2; exit 1; }
    for set in dev test; do
      dir=$exp/decode_${phase}_beam${beam}_$set
      if [ ! -f $dir/.done ]; then
        log "stage 3: beam-$beam decoding of data/$set with $phase ($nj jobs; logs: $dir/log)"
        rm -rf $dir
        decode.sh --nj $nj --cmd "$decode_cmd" \
          --decode-opts "--decoder beam --beam-size $beam" $exp/$phase/final data/$set $dir
        local/score_per.sh data/$set $dir
        touch $dir/.done
      fi
      echo "$phase $set: $(cat $dir/per)"
    done
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: results table (exp/results.md)"
  {
    echo "| system | phase | dev PER % | test PER % | train seconds |"
    echo "|---|---|---:|---:|---:|"
    for dir in exp/ctc_*_250h*; do
      for phase in phase1 phase2; do
        [ -f $dir/decode_${phase}_beam${beam}_test/per ] || continue
        dev=$(awk '{print $2}' $dir/decode_${phase}_beam${beam}_dev/per)
        test=$(awk '{print $2}' $dir/decode_${phase}_beam${beam}_test/per)
        echo "| $(basename $dir) | $phase | $dev | $test | $(cat $dir/$phase/train_seconds 2>/dev/null || echo -) |"
      done
    done
  } > exp/results.md
  cat exp/results.md
fi
log "done"
