#!/usr/bin/env bash
# TIMIT -> data/{train,dev,test}: 462 training speakers without SA sentences, the 50-speaker
# dev set and the 24-speaker core test set (lists in conf/dev_spk.list, conf/test_spk.list,
# the same as asr.corpora.timit's); text = 61 phones, text.words = the sentence.
#   local/prepare_data.sh CORPUS_DIR DATA_DIR
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 CORPUS_DIR DATA_DIR" >&2; exit 1; }
corpus_dir=$1; data=$2
python -m asr.corpora.timit prepare --corpus-dir "$corpus_dir" --out "$data"
# The speaker lists of this recipe must be the ones data prep used.
for set in dev:dev_spk test:test_spk; do
  name=${set%%:*}; list=conf/${set##*:}.list
  if ! diff <(sort "$list") <(cut -d' ' -f1 "$data/$name/spk2utt" | sort) >/dev/null; then
    echo "$0: the speakers of $data/$name differ from $list" >&2; exit 1
  fi
done
