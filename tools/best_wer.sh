#!/usr/bin/env bash
# Kaldi's utils/best_wer.sh: print the line with the lowest %WER, followed by where it came from.
#
#   grep WER exp/*/decode*/wer* | tools/best_wer.sh     # lines "FILE:%WER ..." on stdin
#   tools/best_wer.sh exp/*/decode*/wer*                  # files
#   tools/best_wer.sh exp/*/decode*                       # directories: their wer and wer_* files
#   tools/best_wer.sh                                     # (stdin a terminal) exp/*/decode*/wer*
#
# Options: --metric WER|CER|SER (default WER; any %NAME that the lines carry).
# Output: "%WER 4.21 [ 221 / 5250, 31 ins, 70 del, 120 sub ] exp/tri1/decode/wer_10".
# Ties keep the first line seen; a rate that is not a number (inf, nan) ranks last.
# Exit status 1 when no %WER line was found.
set -euo pipefail

metric=WER
while [ $# -gt 0 ]; do
  case "$1" in
    --metric) metric=${2:?--metric needs a value}; shift 2 ;;
    --metric=*) metric=${1#--metric=}; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "best_wer.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done

files=()
if [ $# -eq 0 ] && [ -t 0 ]; then
  shopt -s nullglob
  set -- exp/*/decode*
  shopt -u nullglob
  if [ $# -eq 0 ]; then
    echo "best_wer.sh: no exp/*/decode* directories here; give files or pipe %WER lines in" >&2
    exit 1
  fi
fi
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(
      find "$arg" -maxdepth 1 -type f \( -name wer -o -name 'wer_*' \) | LC_ALL=C sort)
  elif [ -f "$arg" ]; then
    files+=("$arg")
  else
    echo "best_wer.sh: '$arg' is neither a file nor a directory" >&2
    exit 1
  fi
done
if [ $# -gt 0 ] && [ ${#files[@]} -eq 0 ]; then
  echo "best_wer.sh: no wer or wer_* files in $*" >&2
  exit 1
fi

# With files, each line is labelled with its file; on stdin with what precedes %NAME (grep's
# "FILE:" prefix), as Kaldi's script does.
awk -v tag="%$metric" -v from_files=$(( ${#files[@]} > 0 )) '
  {
    i = index($0, tag " ")
    if (i == 0) next
    rest = substr($0, i)
    label = substr($0, 1, i - 1)
    sub(/[ \t]*:?[ \t]*$/, "", label)
    if (from_files) label = FILENAME
    sub(/[ \t]+$/, "", rest)
    split(rest, field, " ")
    value = field[2]
    rank = (value ~ /^[0-9]+(\.[0-9]*)?$/) ? value + 0 : 1e300
    if (!found || rank < best) {
      found = 1
      best = rank
      line = (label == "") ? rest : rest " " label
    }
  }
  END {
    if (!found) { print "best_wer.sh: no " tag " line found" > "/dev/stderr"; exit 1 }
    print line
  }
' "${files[@]}"
