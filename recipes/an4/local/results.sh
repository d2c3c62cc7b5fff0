#!/usr/bin/env bash
# The results of every system under EXP as a markdown table (WER and CER on dev and test, per
# decoder), or with --best the system and decoder with the lowest dev WER, as two words: the
# system's directory and the decode directory whose score.json holds that search (for a
# decoder with an LM, the test decode with the pair its dev sweep chose). With SYSTEM, --best
# looks at EXP/SYSTEM only (its best decoder).
#   local/results.sh [--best] EXP [SYSTEM]
set -euo pipefail
best=false
[ "${1:-}" = --best ] && { best=true; shift; }
[ $# -eq 1 ] || { $best && [ $# -eq 2 ]; } || { echo "usage: $0 [--best] EXP [SYSTEM]" >&2; exit 1; }
exp=$1
only=${2:-}
# field FILE LABEL: the percentage after '%LABEL' in a Kaldi-style wer file.
field() { awk -v l="%$2" '$1 == l { print $2; exit }' "$1" 2>/dev/null; }
if $best; then
  for sys in "$exp"/*/; do
    sys=${sys%/}
    [ -z "$only" ] || [ "$sys" = "$exp/$only" ] || continue
    for dec in greedy beam beam_lm lexicon_lm; do
      dev=$sys/decode_${dec}_dev/wer; search=$sys/decode_${dec}_dev
      test=$sys/decode_${dec}_test
      if [ -f "$test/tune/best_wer" ]; then
        dev=$(awk '{ print $NF }' "$test/tune/best_wer"); search=$test
      fi
      [ -f "$dev" ] && [ -f "$search/score.json" ] && echo "$(field "$dev" WER) $sys $search"
    done
  done | sort -g | head -n 1 | cut -d' ' -f2-
  exit 0
fi
echo "| system | decoder | dev %WER | dev %CER | test %WER | test %CER | LM weight, word score (tuned on dev) |"
echo "|---|---|---:|---:|---:|---:|---|"
for sys in "$exp"/*/; do
  sys=${sys%/}
  for dec in greedy beam beam_lm lexicon_lm greedy_phones final; do
    dev=$sys/decode_${dec}_dev/wer; test=$sys/decode_${dec}_test
    [ -f "$test/wer" ] || continue
    # Decoders with an LM were tuned on dev: their dev result is the best pair of the sweep.
    [ -f "$test/tune/best_wer" ] && dev=$(awk '{ print $NF }' "$test/tune/best_wer")
    weights=$(python -c 'import json, sys
j = json.load(open(sys.argv[1])); s = j.get("sweep")
print("%g, %g" % (s["lm_weight"], s["word_score"]) if s else
      "%g, %g (fixed)" % (j["lm_weight"], j["word_score"]) if j.get("lm") else "")' "$test/score.json")
    label=$dec
    [ $dec = greedy_phones ] && label="greedy, in phones (%WER = PER)"
    # Stage 7: trained on train + dev, so it has no dev figure; its search came from dev.
    [ $dec = final ] && label="$(python -c 'import json, sys
print(json.load(open(sys.argv[1]))["decoder"])' "$test/score.json"), trained on train + dev"
    echo "| $(basename "$sys") | $label | $(field "$dev" WER) | $(field "$dev" CER) | $(field "$test/wer" WER) | $(field "$test/wer" CER) | $weights |"
  done
done
