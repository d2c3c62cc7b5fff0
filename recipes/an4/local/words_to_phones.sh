#!/usr/bin/env bash
# A Kaldi text file in words -> the same utterances in phones, each word replaced by its
# pronunciation in LEXICON (WORD PH1 PH2 ...; the first one of a word), for phone error rates.
# A word without a pronunciation is an error naming the utterance.
#   local/words_to_phones.sh LEXICON TEXT > PHONE_TEXT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 LEXICON TEXT > PHONE_TEXT" >&2; exit 1; }
awk '
  FNR == NR { if (!($1 in pron)) { p = $2; for (i = 3; i <= NF; i++) p = p " " $i; pron[$1] = p }; next }
  {
    line = $1
    for (i = 2; i <= NF; i++) {
      if (!($i in pron)) { printf "%s: utterance %s: no pronunciation of %s\n", FILENAME, $1, $i > "/dev/stderr"; exit 1 }
      line = line " " pron[$i]
    }
    print line
  }
' "$1" "$2"
