#!/usr/bin/env bash
# Local job launcher with the interface of Kaldi's utils/run.pl:
#
#   tools/run_local.sh [options] [JOB=1:N] LOG COMMAND...
#
# Runs COMMAND once, or once per JOB in 1..N with every "JOB" in LOG and COMMAND replaced by
# the job number, at most --max-jobs-run at a time (default: the number of cores). As in
# run.pl the command line goes through bash: words without spaces are passed as written, so
# `\|` and `\>` in a recipe make pipes and redirections, and words with spaces are quoted.
# Each job's stdout and stderr go to its LOG, headed by the command and the start time and
# ended by the exit status. Exits 1 naming the failed logs when any job fails.
# Options accepted for compatibility with cluster launchers: --mem X, --num-threads N,
# --time T, --config FILE (ignored on a local machine); --gpu N fails when N > 0 and no GPU is
# visible (nvidia-smi), so a GPU job is not silently run on the CPU.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"

max_jobs=$(nproc 2>/dev/null || echo 1)
num_threads=1
launcher_jobvar=""; launcher_first=1; launcher_last=1
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --num-threads) num_threads=$2; shift 2 ;;
    --mem|--time|--config) shift 2 ;;
    --gpu)
      if [ "$2" != 0 ] && ! nvidia-smi -L >/dev/null 2>&1; then
        echo "$0: --gpu $2 requested but no GPU is visible (nvidia-smi)" >&2; exit 1
      fi
      shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) launcher_parse_range "$1" && shift && continue; break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [options] [JOB=1:N] LOG COMMAND..." >&2; exit 2; }
log_pattern=$1; shift
launcher_check_log "$log_pattern"
command_line=$(launcher_join "$@")

run_one() {
  local job=$1 log=$log_pattern cmd=$command_line start status
  if [ -n "$launcher_jobvar" ]; then
    log=${log//$launcher_jobvar/$job}
    cmd=${cmd//$launcher_jobvar/$job}
  fi
  mkdir -p "$(dirname "$log")"
  printf '# %s\n# Started at %s\n#\n' "$cmd" "$(date)" > "$log"
  start=$SECONDS
  bash -c "set -o pipefail; $cmd" >> "$log" 2>&1 < /dev/null
  status=$?
  printf '# Accounting: time=%d threads=%d\n# Ended (code %d) at %s, elapsed time %d seconds\n' \
    $((SECONDS - start)) "$num_threads" "$status" "$(date)" $((SECONDS - start)) >> "$log"
  return $status
}

pids=(); logs=()
for ((job = launcher_first; job <= launcher_last; job++)); do
  while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n || true; done
  run_one "$job" &
  pids+=($!)
  log=$log_pattern; [ -n "$launcher_jobvar" ] && log=${log//$launcher_jobvar/$job}
  logs+=("$log")
done

failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${logs[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: ${#failed[@]} / $((launcher_last - launcher_first + 1)) job(s) failed; see ${failed[*]}" >&2
  exit 1
fi
exit 0
