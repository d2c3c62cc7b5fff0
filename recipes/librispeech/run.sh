#!/usr/bin/env bash
# LibriSpeech (openslr.org/12, CC BY 4.0): BiLSTM-CTC over sentencepiece BPE pieces on the
# 100 h, 460 h or 960 h training set, with on-the-fly speed perturbation and SpecAugment;
# multi-GPU training through torchrun; greedy decoding, then lexicon-constrained beam search
# with a word 4-gram LM (openslr's official 4-gram, or one estimated with KenLM's lmplz on the
# LibriSpeech LM corpus), its weight and word score tuned on dev-clean.
#
#   ./run.sh [--stage N] [--stop-stage M] [--corpus-dir DIR] [--subset 100|460|960]
#            [--ngpu N] [--nodes N] [--nj N] [--lm-source openslr|lmplz|train]
#
# Stages: 0 download (only the parts not found under --corpus-dir; archives verified by
# SHA-256 and MD5), 1 data prep (--nj jobs per part through $prep_cmd), 2 the word LM,
# 3 training (torchrun on --ngpu GPUs on each of --nodes nodes, through $train_cmd), 4 greedy
# decoding (--nj jobs), 5 4-gram decoding: lexicon of the LM vocabulary in BPE pieces, weight
# sweep on dev-clean, the best pair on every set (--nj jobs), 6 the results table
# (exp/results.md).
# A stage that finished leaves a .done marker and is skipped on a rerun; training resumes from
# its newest checkpoint.
#
# Several nodes (Slurm only): ASR_LAUNCHER=slurm ./run.sh --stage 3 --ngpu 8 --nodes 2
# trains on 2 nodes × 8 GPUs: one sbatch job of 2 nodes, one torchrun per node, the rendezvous
# on the job's first host (tools/run_slurm.sh --nodes). data/, exp/ and this directory must be
# on a file system that every node sees; the ranks check at start-up that they read the same
# data and stop with one line if not.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${LIBRISPEECH_DIR:-downloads}   # holds LibriSpeech/<part>/; downloads go here
subset=100            # 100, 460 or 960 hours of training speech
eval_parts="dev-clean dev-other test-clean test-other"
dev_part=dev-clean    # early stopping and the LM weight sweep
lm_source=openslr     # openslr: the official 4-gram; lmplz: KenLM on the LM corpus; train: the training transcripts
lm_order=4
lm_weights=0.5,0.75,1,1.25,1.5
word_scores=-1,0,1,2
beam=50
ngpu=1                # GPUs per node for torchrun (1 on 1 node: plain asr train)
nodes=1               # nodes for training (> 1: ASR_LAUNCHER=slurm; $train_cmd gets --nodes N)
torchrun_opts=""      # e.g. "--standalone"; with --nodes > 1 the launcher sets the rendezvous
nj=8                  # data prep and decoding jobs (each 4-gram decoding job loads the LM)
train_opts=""         # extra `asr train` options, e.g. "--set train.epochs=30"
help_message="Usage: $0 [options]   (LibriSpeech, BPE CTC with a 4-gram LM)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

case "$subset" in
  100|460|960) ;;
  *) echo "$0: --subset must be 100, 460 or 960, not '$subset'" >&2; exit 1 ;;
esac
case "$nodes" in
  ''|0*|*[!0-9]*) echo "$0: --nodes must be a whole number, 1 or more, not '$nodes'" >&2; exit 1 ;;
esac
if [ $nodes -gt 1 ] && [ "${ASR_LAUNCHER:-local}" != slurm ]; then
  echo "$0: --nodes $nodes needs the Slurm launcher (ASR_LAUNCHER=slurm)" >&2; exit 1
fi
case "$lm_source" in
  openslr|lmplz|train) ;;
  *) echo "$0: --lm-source must be openslr, lmplz or train, not '$lm_source'" >&2; exit 1 ;;
esac
train_parts=$(python -c "from asr.corpora.librispeech import SUBSETS; print(' '.join(SUBSETS['$subset']))")
exp=exp/bpe_blstm_${subset}h
train=data/train_${subset}h
dev=data/${dev_part//-/_}
log() { echo "$(date '+%H:%M:%S') [librispeech] $*"; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.download_${subset}_$lm_source.done ]; then
  args=()
  for part in $train_parts $dev_part $eval_parts; do
    [ -d "$corpus_dir/LibriSpeech/$part" ] || args+=(--part "$part")
  done
  if [ $lm_source = openslr ]; then args+=(--lm 4-gram.arpa.gz --lm librispeech-vocab.txt); fi
  if [ $lm_source = lmplz ]; then args+=(--lm librispeech-lm-norm.txt.gz --lm librispeech-vocab.txt); fi
  if [ ${#args[@]} -gt 0 ]; then
    log "stage 0: downloading ${args[*]} into $corpus_dir"
    python -m asr.corpora.librispeech download --dest "$corpus_dir" "${args[@]}"
  fi
  mkdir -p data
  touch data/.download_${subset}_$lm_source.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for part in $train_parts $dev_part $eval_parts; do
    name=data/${part//-/_}
    [ -f $name/.done ] && continue
    log "stage 1: data preparation of $part ($nj jobs; logs: data/local/prep_$part/log)"
    local/prepare_part.sh "$prep_cmd" $nj "$corpus_dir" $part $name
    validate_data_dir.sh --no-feats $name
    touch $name/.done
  done
  if [ ! -f $train/.done ]; then
    rm -rf $train
    # shellcheck disable=SC2046  # one argument per part
    combine_data.sh $train $(for part in $train_parts; do echo data/${part//-/_}; done)
    touch $train/.done
  fi
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ ! -f data/lang/.done ]; then
  log "stage 2: the word $lm_order-gram LM ($lm_source)"
  rm -rf data/lang
  mkdir -p data/lang
  case $lm_source in
    openslr)
      ln -s "$(cd "$corpus_dir" && pwd)/4-gram.arpa" data/lang/lm.arpa
      cp "$corpus_dir/librispeech-vocab.txt" data/lang/words.txt ;;
    lmplz)
      # About 800M words: KenLM's lmplz (tools/install_kenlm.sh builds it); hours and tens of GB.
      asr lm build --order $lm_order --estimator kenlm --memory 50% \
        "$corpus_dir/librispeech-lm-norm.txt" -o data/lang/lm.arpa
      cp "$corpus_dir/librispeech-vocab.txt" data/lang/words.txt ;;
    train)
      asr lm build --order $lm_order --kaldi $train/text -o data/lang/lm.arpa
      cut -d' ' -f2- $train/text | tr ' ' '\n' | LC_ALL=C sort -u | sed '/^$/d' > data/lang/words.txt ;;
  esac
  # flashlight loads a KenLM binary much faster than the ARPA text (tools/install_kenlm.sh).
  if command -v build_binary >/dev/null; then
    build_binary data/lang/lm.arpa data/lang/lm.bin
  fi
  touch data/lang/.done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [ ! -f $exp/.done ]; then
  where="$ngpu GPU(s)"; [ $nodes -gt 1 ] && where="$where on each of $nodes nodes"
  log "stage 3: training on $train ($where; log: $exp/train.log)"
  rm -rf $exp/decode_*
  start=$SECONDS
  if [ $ngpu -gt 1 ] || [ $nodes -gt 1 ]; then
    launcher=(torchrun --nproc_per_node=$ngpu $torchrun_opts -m asr.cli.main train)
  else
    launcher=(asr train)
  fi
  gpu_opt=()
  [ "${ASR_LAUNCHER:-local}" = slurm ] && gpu_opt=(--gpu $ngpu)
  if [ $nodes -gt 1 ]; then gpu_opt+=(--nodes $nodes); fi
  # shellcheck disable=SC2086  # train_opts is a list of options
  train.sh $exp $train_cmd "${gpu_opt[@]}" $exp/log/train.log \
    "${launcher[@]}" --train $train --dev $dev --exp-dir $exp --no-progress \
      --config "$ASR_ROOT/conf/features/fbank80_16k.yaml" --config conf/large.yaml $train_opts
  echo $((SECONDS - start)) > $exp/train_seconds
  touch $exp/.done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for part in $eval_parts; do
    set=${part//-/_}; dir=$exp/decode_greedy_$set
    if [ ! -f $dir/.done ]; then
      log "stage 4: greedy decoding of data/$set ($nj jobs; logs: $dir/log)"
      decode.sh --nj $nj --cmd "$decode_cmd" $exp/final data/$set $dir
      touch $dir/.done
    fi
    echo "greedy $set: $(head -n 1 $dir/wer)"
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  lexicon=$exp/lexicon_bpe.txt
  lm=data/lang/lm.arpa
  [ -f data/lang/lm.bin ] && lm=data/lang/lm.bin
  if [ ! -f $exp/decode_lm_tune/.done ]; then
    log "stage 5: lexicon in BPE pieces, LM weight sweep on $dev (log: $exp/decode_lm_tune/log)"
    rm -rf $exp/decode_lm_tune
    python -m asr.text.spell --model $exp/final data/lang/words.txt -o $lexicon
    $decode_cmd $exp/decode_lm_tune/log/decode.log \
      asr decode --model $exp/final --data $dev --out $exp/decode_lm_tune --decoder lexicon \
        --lexicon $lexicon --lm $lm --beam-size $beam \
        --lm-weight $lm_weights --word-score=$word_scores
    touch $exp/decode_lm_tune/.done
  fi
  # best_wer ends with the path of the best point: .../wer_<lm weight>_<word score>
  best=$(awk '{print $NF}' $exp/decode_lm_tune/best_wer)
  best=${best##*/wer_}; lmwt=${best%_*}; wip=${best#*_}
  for part in $eval_parts; do
    set=${part//-/_}; dir=$exp/decode_lm_$set
    if [ ! -f $dir/.done ]; then
      log "stage 5: 4-gram decoding of data/$set (weight $lmwt, word score $wip; $nj jobs)"
      decode.sh --nj $nj --cmd "$decode_cmd" --decode-opts "--decoder lexicon --lexicon $lexicon \
--lm $lm --beam-size $beam --lm-weight $lmwt --word-score=$wip" $exp/final data/$set $dir
      touch $dir/.done
    fi
    echo "4-gram $set: $(head -n 1 $dir/wer)"
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "stage 6: results table (exp/results.md)"
  {
    echo "| system | decoding | $(echo $eval_parts | sed 's/ / | /g') |"
    echo "|---|---|$(for p in $eval_parts; do printf -- '---:|'; done)"
    for kind in greedy lm; do
      row="| $(basename $exp) | $kind |"
      for part in $eval_parts; do
        f=$exp/decode_${kind}_${part//-/_}/wer
        row="$row $( [ -f $f ] && awk 'NR==1{print $2}' $f || echo -) |"
      done
      echo "$row"
    done
  } > exp/results.md
  cat exp/results.md
fi
log "done"
