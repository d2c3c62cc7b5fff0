#!/usr/bin/env bash
# AN4 -> data/{train,dev,test} and data/local/dict/{lexicon.txt,words.txt}; downloads the CMU
# tarball (NIST SPHERE) into DOWNLOAD_DIR when CORPUS_DIR holds no corpus.
#   local/prepare_data.sh CORPUS_DIR DATA_DIR [DOWNLOAD_DIR [OPTIONS of python -m asr.corpora.an4]]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CORPUS_DIR DATA_DIR [DOWNLOAD_DIR]" >&2; exit 1; }
corpus_dir=$1; data=$2; download_dir=${3:-downloads}
shift $(($# < 3 ? $# : 3))
if [ ! -f "$corpus_dir/etc/an4_train.fileids" ] && [ ! -f "$corpus_dir/an4/etc/an4_train.fileids" ]; then
  echo "$0: no AN4 corpus at '$corpus_dir'; downloading into $download_dir"
  corpus_dir=$download_dir
  download=--download
fi
python -m asr.corpora.an4 --corpus-dir "$corpus_dir" --out "$data" ${download:-} "$@"
