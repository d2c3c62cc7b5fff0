#!/usr/bin/env bash
# Local job launcher with the interface of Kaldi's utils/run.pl:
#
#   tools/run_local.sh [options] [JOB=1:N] LOG COMMAND...
#
# Runs COMMAND once, or once per JOB in 1..N with every "JOB" in LOG and COMMAND replaced by the
# job number, at most --max-jobs-run at a time (default: the number of cores). Each job's stdout
# and stderr go to its LOG, headed by the command and the start time and ended by the exit
# status, as run.pl does. Exits 1 naming the failed logs when any job fails.
# Options accepted for compatibility with cluster launchers: --mem X, --gpu N, --num-threads N,
# --time T (checked for syntax, otherwise ignored on a local machine), --config FILE (ignored).
set -uo pipefail

max_jobs=$(nproc 2>/dev/null || echo 1)
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --mem|--num-threads|--time|--config) shift 2 ;;
    --gpu)
      if [ "$2" != 0 ] && ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "$0: --gpu $2 requested but no GPU is visible (nvidia-smi not found)" >&2; exit 1
      fi
      shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

first=1; last=1; jobvar=""
if [[ "${1:-}" =~ ^([A-Za-z_]+)=([0-9]+):([0-9]+)$ ]]; then
  jobvar=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}; shift
elif [[ "${1:-}" =~ ^([A-Za-z_]+)=([0-9]+)$ ]]; then
  jobvar=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=$first; shift
fi
[ $# -ge 2 ] || { echo "usage: $0 [options] [JOB=1:N] LOG COMMAND..." >&2; exit 2; }
log_pattern=$1; shift

run_one() {
  local job=$1; shift
  local log=$log_pattern args=() a
  for a in "$@"; do
    [ -n "$jobvar" ] && a=${a//$jobvar/$job}
    args+=("$a")
  done
  [ -n "$jobvar" ] && log=${log//$jobvar/$job}
  mkdir -p "$(dirname "$log")"
  {
    echo "# ${args[*]}"
    echo "# Started at $(date)"
  } > "$log"
  local start=$SECONDS status
  # Quoting each argument keeps paths with spaces intact; pipes belong inside `bash -c '...'`.
  ( "${args[@]}" ) >> "$log" 2>&1
  status=$?
  {
    echo "# Accounting: time=$((SECONDS - start)) threads=1"
    echo "# Ended (code $status) at $(date)"
  } >> "$log"
  return $status
}

pids=(); logs=()
for ((job = first; job <= last; job++)); do
  while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n || true; done
  run_one "$job" "$@" &
  pids+=($!)
  log=$log_pattern; [ -n "$jobvar" ] && log=${log//$jobvar/$job}
  logs+=("$log")
done

failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${logs[$i]}")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: ${#failed[@]} / $((last - first + 1)) job(s) failed; see ${failed[*]}" >&2
  exit 1
fi
exit 0
