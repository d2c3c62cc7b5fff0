#!/usr/bin/env bash
# The lexicon decoder's spellings for a phone model: every pronunciation in the Kaldi lexicon
# IN (WORD PH1 PH2 ...) whose phones are all among the model's TOKENS (tokens.txt), followed by
# the word-boundary token the model is trained with (tokenizer.word_boundary: true).
# Pronunciations with a phone the model never saw in training are left out (counted).
#   local/phone_lexicon.sh IN TOKENS OUT
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 IN TOKENS OUT" >&2; exit 1; }
awk -v out="$3.tmp" -v name="$3" '
  FNR == NR { known[$1] = 1; next }
  NF >= 2 {
    for (i = 2; i <= NF; i++) if (!($i in known)) { dropped++; next }
    print $0, "<space>" > out; words[$1] = 1
  }
  END { n = 0; for (w in words) n++; printf "%s: %d words, %d pronunciations left out\n", name, n, dropped + 0 }
' "$2" "$1"
mv "$3.tmp" "$3"
