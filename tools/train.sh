#!/usr/bin/env bash
# A recipe's training stage with live progress on the terminal:
#
#   tools/train.sh EXP_DIR $train_cmd [LAUNCHER OPTIONS] LOG asr train --exp-dir EXP_DIR ...
#
# Runs the launcher command line after EXP_DIR as it is (the launcher writes the job's whole
# output to LOG, as Kaldi's run.pl and slurm.pl do) and, beside it, `asr follow EXP_DIR`, which
# prints each line the run adds to EXP_DIR/train.log (one per epoch: train loss, dev WER,
# seconds, ETA) and, when stdout is a terminal, a progress bar of the current epoch. Exits with
# the launcher's status; LOG and EXP_DIR/train.log stay complete.
set -uo pipefail
[ $# -ge 4 ] || { echo "usage: $0 EXP_DIR LAUNCHER [OPTIONS] LOG COMMAND..." >&2; exit 2; }
exp=$1
shift
mkdir -p "$exp"
asr follow "$exp" &
follower=$!
"$@"
status=$?
kill -TERM "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
exit $status
