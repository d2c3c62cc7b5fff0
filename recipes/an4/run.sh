#!/usr/bin/env bash
# CMU AN4 (census database: spelled words, numbers and commands by 84 speakers, 16 kHz):
# BiLSTM-CTC over characters (and over CMU phones, with the lexicon of an4.dic), decoded with
# greedy search, prefix beam search, beam search + word 3-gram LM, and lexicon + word 3-gram LM.
# The LM is estimated on the training transcripts only; its weight and the word score are tuned
# on dev (8 training speakers held out) and then applied to test (130 utterances, 773 words).
#
#   ./run.sh [--stage N] [--stop-stage M] [--corpus-dir DIR] [--preset cpu|gpu|long|auto] [--nj N]
#
# Stages: 0 data prep (downloads the CMU tarball when no corpus is found), 1 LM and lexicons,
# 2 train the character system, 3 decode it, 4 train the phone system, 5 decode it and score
# its greedy output in phones (both only with 'phone' in --systems), 6 the results table
# (exp/results.md) and installing the system and decoder with the best dev WER as --model-name,
# with its lexicon, LM and tuned weights (what `transcribe --model an4` then uses), and with
# --final true 7: the best system trained again on train + dev (same preset and epochs, the
# weights of its last epochs averaged as before: nothing is chosen on dev there), decoding test
# once with the search stage 6 installed, then installed in its place.
# A stage that finished leaves a .done marker and is skipped on a rerun; one that failed is
# redone from scratch (training resumes from its newest checkpoint).
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus_dir=${AN4_DIR:-../../../shared/data/an4}   # or $AN4_DIR; downloaded when absent
dev_speakers=8        # training speakers held out as dev
preset=auto           # cpu, gpu, or auto (gpu when CUDA is usable)
systems="char"        # add 'phone' for the phone CTC system
train_opts=""         # extra `asr train` options, e.g. "--set train.epochs=5"
nj=2                  # greedy decoding jobs
lm_order=3
lm_weights=0,0.25,0.5,0.75,1,1.25,1.5,2,2.5,3
word_scores=-3,-2,-1,0,1,2,3,4,5,6,8
beam_size=16
char_decoders="greedy beam beam_lm lexicon_lm"
# A phone model's own output is phones: words come from the lexicon decoder only.
phone_decoders="lexicon_lm"
model_name=an4        # name in the model store (stage 6)
final=false           # true: stage 7 retrains the best system on train + dev and installs it
rover=""              # stage 8: systems as UNIT:SEED[:PRESET], best first on dev (e.g. "phone:0
                      # phone:0:long+utt_cmvn char:0"; PRESET: conf files joined by +, default
                      # --preset), each trained on train (choices on dev) and on train + dev,
                      # combined by ROVER on test and installed as one model
combine=rover         # stage 8: rover (word voting) or rescore (n-best rescoring by every
                      # system and the word LM, its weights swept on dev: asr rescore)
make_default=false    # true: also make it the default model of `transcribe`
allow_pipes=false     # true: run commands ('cmd |') found in wav.scp
help_message="Usage: $0 [options]   (AN4 recognition: character and phone CTC)"

. ./path.sh
. ./cmd.sh
. parse_options.sh

$allow_pipes && export ASR_ALLOW_PIPES=1

if [ "$preset" = auto ]; then
  preset=$(python -c 'import torch; print("gpu" if torch.cuda.is_available() else "cpu")')
fi
if [ "$preset" = phone ] || [ ! -f "conf/$preset.yaml" ]; then
  echo "$0: --preset must be auto or one of conf/*.yaml (cpu, gpu, long), not '$preset'" >&2
  exit 1
fi
for system in $systems; do
  case "$system" in
    char|phone) ;;
    *) echo "$0: --systems takes 'char' and 'phone', not '$system'" >&2; exit 1 ;;
  esac
done
case "$combine" in
  rover|rescore) ;;
  *) echo "$0: --combine takes 'rover' or 'rescore', not '$combine'" >&2; exit 1 ;;
esac
for member in $rover; do
  if ! [[ "$member" =~ ^(char|phone):[0-9]+(:[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*)?$ ]]; then
    echo "$0: --rover takes UNIT:SEED[:PRESET] (UNIT char or phone, SEED a number, PRESET conf" \
      "files joined by +), not '$member'" >&2
    exit 1
  fi
  IFS=: read -r _ _ member_preset <<< "$member"
  for conf in ${member_preset//+/ }; do
    [ -f "conf/$conf.yaml" ] || { echo "$0: --rover $member: no conf/$conf.yaml" >&2; exit 1; }
  done
done
log() { echo "$(date '+%H:%M:%S') [an4] $*"; }
install_opts=()
$make_default && install_opts+=(--default)
has_system() { case " $systems " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# train_system UNIT EXP: one training run of the preset for UNIT (char or phone).
train_system() {
  local unit=$1 exp=$2
  log "training the $unit system ($preset preset; log: $exp/train.log)"
  rm -rf "$exp"/decode_*  # decodes of an earlier model are no longer valid
  local start=$SECONDS
  # shellcheck disable=SC2086  # train_opts is a list of options
  train.sh "$exp" $train_cmd "$exp/log/train.log" \
    asr train --train data/train --dev data/dev --exp-dir "$exp" --no-progress \
      $(preset_opts "$preset") $(unit_opts "$unit") $train_opts
  echo $((SECONDS - start)) > "$exp/train_seconds"
  echo "$preset" > "$exp/preset"  # what stage 7 trains again on train + dev
}

# preset_opts PRESET: the `asr train` options of a preset (conf files joined by +, in order).
preset_opts() { local conf; for conf in ${1//+/ }; do echo "--config conf/$conf.yaml"; done; }

# system_name UNIT SEED PRESET: a system's directory under exp/ (seed 0 of --preset: the one
# of stages 2 and 4).
system_name() {
  local name="${1}_${3//+/_}"
  if [ "$2" = 0 ]; then echo "$name"; else echo "${name}_s$2"; fi
}

# make_train_dev: data/train_dev, the training and dev sets together (stages 7 and 8).
make_train_dev() {
  if [ ! -f data/train_dev/.done ]; then
    rm -rf data/train_dev
    combine_data.sh data/train_dev data/train data/dev
    touch data/train_dev/.done
  fi
}

# train_dev_system UNIT EXP [OPTIONS]: the preset for UNIT trained on train + dev, no dev set.
train_dev_system() {
  local unit=$1 exp=$2 start=$SECONDS
  shift 2
  rm -rf "$exp"/decode_*
  # shellcheck disable=SC2086  # train_opts is a list of options
  train.sh "$exp" $train_cmd "$exp/log/train.log" \
    asr train --train data/train_dev --exp-dir "$exp" --no-progress \
      $(preset_opts "$preset") $(unit_opts "$unit") $train_opts "$@"
  echo $((SECONDS - start)) > "$exp/train_seconds"
}

# set_search EXP UNIT SCORE_JSON: EXP/final decodes with the search of SCORE_JSON (a phone
# model with a lexicon in its own tokens, EXP/lexicon.txt).
set_search() {
  local exp=$1 unit=$2 score=$3 opts=(--from "$3")
  if [ "$unit" = phone ]; then
    local/phone_lexicon.sh data/local/dict/lexicon.txt "$exp/final/tokens.txt" "$exp/lexicon.txt"
    opts+=(--lexicon "$exp/lexicon.txt")
  fi
  asr models set-decoder "$exp/final" "${opts[@]}"
}

# unit_opts UNIT: the `asr train` options that select the output units.
unit_opts() {
  case "$1" in
    char) echo "--set tokenizer.type=char" ;;
    phone) echo "--config conf/phone.yaml" ;;
  esac
}

# decode_system EXP LEXICON DECODERS: each decoder of DECODERS (greedy, beam, beam_lm,
# lexicon_lm) on dev and test; LM weight and word score tuned on dev.
decode_system() {
  local exp=$1 lexicon=$2 decoders=$3 name set dir args
  # Each decoder is measured as named: a search stored in the model earlier (set_search, or
  # by hand) would otherwise fill in what these options leave open (greedy would search with
  # its lexicon, beam with its LM). The best one is stored again afterwards.
  rm -f "$exp/final/decoding.yaml"
  for name in $decoders; do
    if [ $name = greedy ]; then
      for set in dev test; do
        dir=$exp/decode_greedy_$set
        [ -f "$dir/.done" ] && continue
        log "decoding data/$set: greedy ($nj jobs; logs: $dir/log)"
        rm -rf "$dir"
        decode.sh --nj $nj --cmd "$decode_cmd" "$exp/final" data/$set "$dir"
        touch "$dir/.done"
      done
      continue
    fi
    # A beam search decodes a set in one job. With an LM the weights are swept on dev and the
    # best pair decodes test: decode_<name>_test/tune/ holds every pair's dev WER and best_wer
    # names the chosen one (the dev result of that decoder).
    case $name in
      beam) args=(--decoder beam --beam-size "$beam_size") ;;
      beam_lm) args=(--decoder beam --beam-size "$beam_size" --lm data/lang/lm.arpa) ;;
      lexicon_lm) args=(--decoder lexicon --beam-size "$beam_size" --lm data/lang/lm.arpa
                        --lexicon "$lexicon") ;;
      *) echo "$0: unknown decoder '$name'" >&2; exit 1 ;;
    esac
    sets="dev test"
    if [ $name != beam ]; then
      args+=(--lm-weight "$lm_weights" --word-score="$word_scores" --tune-data data/dev)
      sets=test
    fi
    for set in $sets; do
      dir=$exp/decode_${name}_$set
      [ -f "$dir/.done" ] && continue
      log "decoding data/$set: $name (log: $dir/log/decode.log)"
      rm -rf "$dir"
      $decode_cmd "$dir/log/decode.log" \
        asr decode --model "$exp/final" --data data/$set --out "$dir" "${args[@]}"
      touch "$dir/.done"
    done
  done
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && [ ! -f data/.done ]; then
  log "stage 0: data preparation from $corpus_dir"
  rm -rf data
  local/prepare_data.sh "$corpus_dir" data downloads --dev-speakers $dev_speakers
  for set in train dev test; do validate_data_dir.sh --no-feats data/$set; done
  touch data/.done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ] && [ ! -f data/lang/.done ]; then
  log "stage 1: $lm_order-gram word LM from the training transcripts; character lexicon"
  rm -rf data/lang
  mkdir -p data/lang
  asr lm build --order $lm_order --kaldi data/train/text -o data/lang/lm.arpa
  # Every word of the corpus dictionary, spelled in characters (the char system's lexicon).
  asr lm lexicon data/local/dict/words.txt -o data/lang/lexicon_char.txt
  touch data/lang/.done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ] && [ ! -f exp/char_$preset/.done ]; then
  log "stage 2: the character system"
  train_system char exp/char_$preset
  touch exp/char_$preset/.done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: decoding the character system"
  decode_system exp/char_$preset data/lang/lexicon_char.txt "$char_decoders"
fi

if has_system phone; then
  if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ ! -f exp/phone_$preset/.done ]; then
    log "stage 4: the phone system"
    train_system phone exp/phone_$preset
    touch exp/phone_$preset/.done
  fi
  if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
    log "stage 5: decoding the phone system"
    # Spellings in the phone model's own tokens: every pronunciation of an4.dic it can emit.
    local/phone_lexicon.sh data/local/dict/lexicon.txt exp/phone_$preset/final/tokens.txt \
      exp/phone_$preset/lexicon.txt
    decode_system exp/phone_$preset exp/phone_$preset/lexicon.txt "$phone_decoders"
    # Phone error rate: greedy search scored against the references in the training phones.
    for set in dev test; do
      dir=exp/phone_$preset/decode_greedy_phones_$set
      [ -f "$dir/.done" ] && continue
      rm -rf data/${set}_phones
      mkdir -p data/${set}_phones
      cp data/$set/wav.scp data/$set/utt2spk data/$set/spk2utt data/${set}_phones/
      local/words_to_phones.sh data/local/dict/lexicon_train.txt data/$set/text > data/${set}_phones/text
      log "decoding data/$set: greedy, scored in phones (PER; logs: $dir/log)"
      rm -rf "$dir"
      decode.sh --nj $nj --cmd "$decode_cmd" "exp/phone_$preset/final" data/${set}_phones "$dir"
      touch "$dir/.done"
    done
  fi
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "stage 6: results (exp/results.md)"
  local/results.sh exp > exp/results.md
  cat exp/results.md
  read -r best search < <(local/results.sh --best exp)
  log "installing $best/final as '$model_name' with the search of $search (best dev WER)"
  asr models install "$best/final" --name "$model_name" "${install_opts[@]}"
  # The model carries its decoder: lexicon, LM and the weights tuned on dev.
  asr models set-decoder "$model_name" --from "$search/score.json"
  asr models list
fi

if $final && [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  read -r best search < <(local/results.sh --best exp)
  name=$(basename "$best")          # UNIT_PRESET, e.g. phone_long
  unit=${name%%_*} sys_preset=${name#*_}
  [ -f "$best/preset" ] && sys_preset=$(cat "$best/preset")
  seed=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["train"]["seed"])' \
    "$best/config.yaml")
  exp=exp/${name}_traindev
  log "stage 7: $name again on train + dev ($exp), with the search of $search"
  make_train_dev
  if [ ! -f "$exp/.done" ]; then
    preset=$sys_preset train_dev_system "$unit" "$exp" --set train.seed="$seed"
    touch "$exp/.done"
  fi
  # The dev-tuned search travels with the model, and `asr decode` uses it as it is (a phone
  # model's lexicon in its own tokens, which may differ from those of $best).
  decoder=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["decoder"])' \
    "$search/score.json")
  set_search "$exp" "$unit" "$search/score.json"
  dir=$exp/decode_final_test
  if [ ! -f "$dir/.done" ]; then
    log "decoding data/test: $decoder, the search of $search (log: $dir/log/decode.log)"
    rm -rf "$dir"
    $decode_cmd "$dir/log/decode.log" asr decode --model "$exp/final" --data data/test --out "$dir"
    touch "$dir/.done"
  fi
  grep -h '%WER' "$dir/wer"
  asr models install "$exp/final" --name "$model_name" "${install_opts[@]}"
  asr models list
fi

if [ -n "$rover" ] && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "stage 8: $combine of $rover (best first on dev)"
  make_train_dev
  dev_hyps=() test_hyps=() finals=() dev_models=()
  for member in $rover; do
    IFS=: read -r unit seed member_preset <<< "$member"
    member_preset=${member_preset:-$preset}
    name=$(system_name "$unit" "$seed" "$member_preset")
    # On train: its decoders swept on dev (as stages 2-5 for seed 0), the best one kept.
    if [ ! -f "exp/$name/.done" ]; then
      preset=$member_preset train_opts="$train_opts --set train.seed=$seed" train_system "$unit" "exp/$name"
      touch "exp/$name/.done"
    fi
    if [ "$unit" = phone ]; then
      local/phone_lexicon.sh data/local/dict/lexicon.txt "exp/$name/final/tokens.txt" "exp/$name/lexicon.txt"
      decode_system "exp/$name" "exp/$name/lexicon.txt" "$phone_decoders"
    else
      decode_system "exp/$name" data/lang/lexicon_char.txt "$char_decoders"
    fi
    read -r _ search < <(local/results.sh --best exp "$name")
    set_search "exp/$name" "$unit" "$search/score.json"
    dir=exp/$name/decode_final_dev
    if [ ! -f "$dir/.done" ]; then
      rm -rf "$dir"
      $decode_cmd "$dir/log/decode.log" asr decode --model "exp/$name/final" --data data/dev --out "$dir"
      touch "$dir/.done"
    fi
    dev_hyps+=("$dir/text")
    dev_models+=(--model "exp/$name/final")
    # On train + dev, with that search; test decoded once.
    td=exp/${name}_traindev
    if [ ! -f "$td/.done" ]; then
      log "training $name again on train + dev ($td)"
      preset=$member_preset train_dev_system "$unit" "$td" --set train.seed="$seed"
      touch "$td/.done"
    fi
    set_search "$td" "$unit" "$search/score.json"
    finals+=("$td/final")
    [ "$combine" = rover ] || continue
    dir=$td/decode_final_test
    if [ ! -f "$dir/.done" ]; then
      rm -rf "$dir"
      $decode_cmd "$dir/log/decode.log" asr decode --model "$td/final" --data data/test --out "$dir"
      touch "$dir/.done"
    fi
    test_hyps+=("$dir/text")
  done
fi
if [ -n "$rover" ] && [ "$combine" = rescore ] && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  # The systems trained on train choose the weights on dev; those trained on train + dev,
  # installed as one model with those weights, decode test once.
  dir=exp/rescore
  rm -rf $dir/final
  $decode_cmd $dir/decode_dev/log/rescore.log asr rescore "${dev_models[@]}" --data data/dev \
    --out $dir/decode_dev --lm data/lang/lm.arpa --lm-weight $lm_weights --word-score=$word_scores
  asr models rescore "${finals[@]}" --out $dir/final --from $dir/decode_dev/score.json
  $decode_cmd $dir/decode_test/log/rescore.log asr rescore --model $dir/final --data data/test \
    --out $dir/decode_test
  asr score --ref data/test/text --hyp $dir/decode_test/text --bootstrap 1000 > $dir/decode_test/wer
  log "n-best rescoring on dev (systems trained on train): $(grep -h '%WER' $dir/decode_dev/wer)"
  log "n-best rescoring on test (systems trained on train + dev): $(grep -h '%WER' $dir/decode_test/wer)"
  asr models install $dir/final --name "$model_name" "${install_opts[@]}"
  asr models list
fi
if [ -n "$rover" ] && [ "$combine" = rover ] && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  mkdir -p exp/rover/decode_dev exp/rover/decode_test
  asr combine -q "${dev_hyps[@]}" -o exp/rover/decode_dev/text
  asr score --ref data/dev/text --hyp exp/rover/decode_dev/text > exp/rover/decode_dev/wer
  asr combine -q "${test_hyps[@]}" -o exp/rover/decode_test/text
  asr score --ref data/test/text --hyp exp/rover/decode_test/text --bootstrap 1000 > exp/rover/decode_test/wer
  log "ROVER on dev (systems trained on train): $(grep -h '%WER' exp/rover/decode_dev/wer)"
  log "ROVER on test (systems trained on train + dev): $(grep -h '%WER' exp/rover/decode_test/wer)"
  rm -rf exp/rover/final
  asr models rover "${finals[@]}" --out exp/rover/final
  asr models install exp/rover/final --name "$model_name" "${install_opts[@]}"
  asr models list
fi
log "done"
