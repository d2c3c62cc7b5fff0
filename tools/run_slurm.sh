#!/usr/bin/env bash
# Slurm job launcher with the interface of Kaldi's utils/slurm.pl (and of run_local.sh):
#
#   tools/run_slurm.sh [options] [JOB=1:N] LOG COMMAND...
#
# A job range is ONE `sbatch --array=1-N[%M]` call; a single job is one blocking `srun` call.
# Each task runs COMMAND (with JOB replaced by its number, through bash as run.pl does) in the
# current directory after sourcing ./path.sh when there is one, writes its LOG with run.pl's
# header and footer, and leaves its exit status in LOGDIR/q/. The launcher waits (polling
# squeue) until every task has finished, then exits 1 naming the failed logs; a task that left
# no exit status (killed, out of memory, over time, node failure) is reported with the state
# sacct gives. Ctrl-C cancels the job (scancel).
#
# Options (resources are turned into Slurm options by the config file):
#   --config FILE       default: conf/slurm.conf here, else the toolkit's conf/slurm.conf
#   --mem 4G            --gpu N           --num-threads N           --time 4:00:00
#   --max-jobs-run M    at most M array tasks at once (sbatch --array=1-N%M)
#   --poll-interval S   seconds between squeue polls (default 10)
#   --sync-timeout S    after the job left the queue, how long to wait for status files on a
#                       shared file system (default 60)
#   --any-name VALUE    any other option that the config file has a rule for
#
# Config file (the syntax of Kaldi's conf/slurm.conf):
#   command sbatch --export=PATH       the submit command and options every job gets
#   default gpu=0                      value used when the option is not given
#   option gpu=0 --partition cpu       what to add for an exact value
#   option gpu=* --gres=gpu:$0         what to add for any other value ($0 is the value)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

config=""
max_jobs=""
poll=${ASR_SLURM_POLL:-10}
sync_timeout=60
declare -A given=()
launcher_jobvar=""; launcher_first=1; launcher_last=1
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --poll-interval) poll=$2; shift 2 ;;
    --sync-timeout) sync_timeout=$2; shift 2 ;;
    --*)
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      name=${1#--}; given[${name//-/_}]=$2; shift 2 ;;
    *) launcher_parse_range "$1" && shift && continue; break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [options] [JOB=1:N] LOG COMMAND..." >&2; exit 2; }
log_pattern=$1; shift
launcher_check_log "$log_pattern"
command_line=$(launcher_join "$@")

if [ -z "$config" ]; then
  config=conf/slurm.conf
  [ -f "$config" ] || config=$root/conf/slurm.conf
fi
[ -f "$config" ] || { echo "$0: Slurm config '$config' not found" >&2; exit 1; }

# --- resource options -> Slurm options, by the config's rules
submit=(); declare -A defaults=() exact=() wildcard=()
while read -r kind spec rest || [ -n "$kind" ]; do
  case "$kind" in
    ''|\#*) ;;
    command) read -r -a submit <<< "$spec $rest" ;;
    default) defaults[${spec%%=*}]=${spec#*=} ;;
    option)
      key=${spec%%=*}; value=${spec#*=}
      if [ "$value" = '*' ]; then wildcard[$key]=$rest; else exact[$key=$value]=$rest; fi ;;
    *) echo "$0: $config: unknown line '$kind $spec $rest'" >&2; exit 1 ;;
  esac
done < <(sed 's/#.*//' "$config")
[ ${#submit[@]} -gt 0 ] || { echo "$0: $config has no 'command sbatch ...' line" >&2; exit 1; }
slurm_opts=("${submit[@]:1}")
keys=$(printf '%s\n' "${!defaults[@]}" "${!given[@]}" | sort -u)
for key in $keys; do
  value=${given[$key]:-${defaults[$key]}}
  if [ -n "${exact[$key=$value]+set}" ]; then
    add=${exact[$key=$value]}
  elif [ -n "${wildcard[$key]+set}" ]; then
    add=${wildcard[$key]//\$0/$value}
  else
    echo "$0: --${key//_/-} $value: $config has no rule for it (option $key=...)" >&2
    exit 1
  fi
  read -r -a words <<< "$add"
  slurm_opts+=("${words[@]}")
done

# --- the job script: one per call, run by every task
logdir=$(dirname "$log_pattern")
qdir=$logdir/q
base=$(basename "$log_pattern" .log); base=${base//$launcher_jobvar/}; base=${base//[^A-Za-z0-9_.-]/}
name=${base:-job}
mkdir -p "$qdir"
script=$qdir/$name.sh
rm -f "$qdir/$name".status.*
{
  echo '#!/usr/bin/env bash'
  echo "# Written by run_slurm.sh for: $command_line"
  printf 'cd %q || exit 1\n' "$PWD"
  echo '[ -f ./path.sh ] && . ./path.sh'
  printf 'task=${SLURM_ARRAY_TASK_ID:-%d}\n' "$launcher_first"
  printf 'cmd=%q\nlog=%q\n' "$command_line" "$log_pattern"
  if [ -n "$launcher_jobvar" ]; then
    printf 'cmd=${cmd//%s/$task}\nlog=${log//%s/$task}\n' "$launcher_jobvar" "$launcher_jobvar"
  fi
  echo 'mkdir -p "$(dirname "$log")"'
  echo 'printf "# %s\n# Started at %s on %s\n#\n" "$cmd" "$(date)" "$(hostname)" > "$log"'
  echo 'start=$(date +%s)'
  echo 'bash -c "set -o pipefail; $cmd" >> "$log" 2>&1 < /dev/null'
  echo 'status=$?'
  echo 'elapsed=$(( $(date +%s) - start ))'
  echo 'printf "# Accounting: time=%d threads=%s\n# Ended (code %d) at %s, elapsed time %d seconds\n" "$elapsed" "${SLURM_CPUS_PER_TASK:-1}" "$status" "$(date)" "$elapsed" >> "$log"'
  printf 'status_file=%q.status.$task\n' "$qdir/$name"
  echo 'echo "$status" > "$status_file.tmp" && mv "$status_file.tmp" "$status_file"'
  echo 'exit $status'
} > "$script"
chmod +x "$script"

task_log() {
  local log=$log_pattern
  [ -n "$launcher_jobvar" ] && log=${log//$launcher_jobvar/$1}
  printf '%s' "$log"
}

# --- submit and wait
jobid=""
cancel() {
  [ -n "$jobid" ] && command -v scancel >/dev/null 2>&1 && scancel "$jobid"
  echo "$0: interrupted; cancelled Slurm job ${jobid:-(none)}" >&2
  exit 130
}
trap cancel INT TERM

if [ -z "$launcher_jobvar" ]; then
  # A single job: srun blocks until it ends and returns its exit status.
  srun "${slurm_opts[@]}" --job-name="$name" --output="$qdir/$name.out" bash "$script"
  rc=$?
  if [ ! -f "$qdir/$name.status.$launcher_first" ]; then
    echo "$0: job ended without an exit status (srun exit $rc); see $qdir/$name.out" >&2
    exit 1
  fi
  status=$(cat "$qdir/$name.status.$launcher_first")
  if [ "$status" != 0 ]; then
    echo "$0: job failed (code $status); see $(task_log "$launcher_first")" >&2
    exit 1
  fi
  exit 0
fi

array="$launcher_first-$launcher_last${max_jobs:+%$max_jobs}"
out=$(sbatch "${slurm_opts[@]}" --parsable --job-name="$name" --array="$array" \
  --output="$qdir/$name-%a.out" "$script") || {
  echo "$0: sbatch failed: $out" >&2; exit 1; }
jobid=${out%%;*}
echo "$0: submitted Slurm job $jobid ($array): $command_line" >&2

all_done() {
  local t
  for ((t = launcher_first; t <= launcher_last; t++)); do
    [ -f "$qdir/$name.status.$t" ] || return 1
  done
}
while ! all_done; do
  if [ -z "$(squeue -h -j "$jobid" -o %i 2>/dev/null)" ]; then
    # Gone from the queue: give a shared file system time to show the status files.
    waited=0
    while ! all_done && [ "$waited" -lt "$sync_timeout" ]; do sleep 1; waited=$((waited + 1)); done
    break
  fi
  sleep "$poll"
done

failed=()
for ((t = launcher_first; t <= launcher_last; t++)); do
  status_file=$qdir/$name.status.$t
  if [ ! -f "$status_file" ]; then
    state=$(sacct -n -P -j "${jobid}_$t" -o State 2>/dev/null | head -n 1)
    echo "$0: task $t left no exit status (Slurm state: ${state:-unknown}); see $(task_log "$t") and $qdir/$name-$t.out" >&2
    failed+=("$(task_log "$t")")
  elif [ "$(cat "$status_file")" != 0 ]; then
    failed+=("$(task_log "$t")")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$0: ${#failed[@]} / $((launcher_last - launcher_first + 1)) job(s) failed; see ${failed[*]}" >&2
  exit 1
fi
exit 0
