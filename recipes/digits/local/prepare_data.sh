#!/usr/bin/env bash
# FSDD -> data/{train,dev,test,test_isolated}; downloads the corpus when it is absent.
#   local/prepare_data.sh CORPUS_DIR DATA_DIR [DOWNLOAD_DIR]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 CORPUS_DIR DATA_DIR [DOWNLOAD_DIR]" >&2; exit 1; }
corpus_dir=$1; data=$2; download_dir=${3:-downloads}
if [ ! -d "$corpus_dir/recordings" ]; then
  echo "$0: no FSDD at '$corpus_dir'; downloading into $download_dir"
  corpus_dir=$download_dir
  download=--download
fi
python -m asr.corpora.fsdd --corpus-dir "$corpus_dir" --out "$data" ${download:-}
