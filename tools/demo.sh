#!/usr/bin/env bash
# The README's main command (`make demo`): run the digits recipe end to end (CPU preset, or the
# GPU preset when CUDA is usable), then transcribe one held-out connected-digit recording.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
recipe=$root/recipes/digits

"$recipe/run.sh" "$@"

exp=$recipe/exp/bilstm_ctc
echo
echo "== WER on the connected-digit test set ($(wc -l < "$recipe/data/test/text") utterances, greedy decoding)"
cat "$exp/decode_test/wer"
# One held-out recording: the first connected-digit test utterance.
read -r utt wav < "$recipe/data/test/wav.scp"
reference=$(grep "^$utt " "$recipe/data/test/text" | cut -d' ' -f2-)
echo
echo "== transcribe $wav"
transcript=$("$root/.venv/bin/transcribe" "$wav")
echo "reference : $reference"
echo "transcript: $transcript"
