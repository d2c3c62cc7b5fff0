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
#   --nodes N           one job across N nodes (default 1), for a COMMAND that begins with
#                       torchrun: see "Several nodes" below
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
#
# Several nodes (--nodes N, N > 1; not with a JOB range): COMMAND must begin with torchrun, as
# run.sh's training command does (torchrun --nproc_per_node=G ... -m asr.cli.main train ...).
# The job is one `sbatch` with the config's nodes rule (--nodes=N --ntasks=N
# --ntasks-per-node=1) besides the other resources, which Slurm applies per node (--gpu G,
# --mem X); the launcher waits for it as for an array. Its batch step, on the first node, runs
#   srun --ntasks-per-node=1 --kill-on-bad-exit=1 torchrun --nnodes N [--nproc-per-node G]
#     --rdzv-backend c10d --rdzv-endpoint HEAD:PORT --rdzv-id $SLURM_JOB_ID <COMMAND's torchrun arguments>
# (one torchrun per node; --nproc-per-node G from --gpu G, or 1, unless COMMAND sets it): HEAD
# is the first host of `scontrol show hostnames "$SLURM_JOB_NODELIST"` (`hostname` when
# scontrol is missing), PORT is $ASR_RDZV_PORT (default 29500). Every node's output goes to
# the one LOG. COMMAND must not set torchrun's own --nnodes, --node-rank, --master-addr,
# --master-port, --rdzv-* or --standalone.
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

# --- several nodes: one torchrun per node, rendezvous on the first host
nodes=${given[nodes]:-${defaults[nodes]:-1}}
multinode=""
if [[ ! "$nodes" =~ ^[1-9][0-9]*$ ]]; then
  echo "$0: --nodes $nodes: the number of nodes must be a whole number, 1 or more" >&2; exit 2
elif [ "$nodes" -gt 1 ]; then
  if [ -n "$launcher_jobvar" ]; then
    echo "$0: --nodes $nodes runs one job across nodes; it cannot be used with the job range" \
      "$launcher_jobvar=$launcher_first:$launcher_last" >&2; exit 2
  fi
  if [ "$1" != torchrun ]; then
    echo "$0: --nodes $nodes starts one torchrun per node; the command must begin with" \
      "torchrun, not '$1'" >&2; exit 2
  fi
  nproc=""; prev=""
  for arg in "${@:2}"; do   # torchrun's own options: up to -m or the program
    case "$prev" in --nproc-per-node|--nproc_per_node) nproc=$arg ;; esac
    case "$arg" in
      -m|--) break ;;
      --nnodes|--nnodes=*|--node-rank*|--node_rank*|--master-addr*|--master_addr*|\
      --master-port*|--master_port*|--rdzv*|--standalone)
        echo "$0: --nodes $nodes sets torchrun's rendezvous itself; remove ${arg%%=*} from" \
          "the command" >&2; exit 2 ;;
      --nproc-per-node=*|--nproc_per_node=*) nproc=${arg#*=} ;;
    esac
    prev=$arg
  done
  gpus=${given[gpu]:-${defaults[gpu]:-0}}
  if [ -n "$nproc" ] && [[ "$nproc" =~ ^[0-9]+$ && "$gpus" =~ ^[1-9][0-9]*$ ]] \
      && [ "$nproc" != "$gpus" ]; then
    echo "$0: --gpu $gpus but the command's torchrun starts $nproc processes per node" >&2; exit 2
  fi
  port=${ASR_RDZV_PORT:-29500}
  if [[ ! "$port" =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: ASR_RDZV_PORT=$port: the rendezvous port must be a number" >&2; exit 2
  fi
  multinode="torchrun --nnodes $nodes"
  if [ -z "$nproc" ]; then
    [[ "$gpus" =~ ^[1-9][0-9]*$ ]] || gpus=1
    multinode+=" --nproc-per-node $gpus"
  fi
  multinode+=" --rdzv-backend c10d --rdzv-endpoint \$head:$port --rdzv-id \$SLURM_JOB_ID"
fi

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
  if [ -n "$multinode" ]; then
    # The batch step runs on the first node of the allocation: the rendezvous host.
    echo 'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" 2>/dev/null | head -n 1)'
    echo '[ -n "$head" ] || head=$(hostname)'
    printf 'cmd="srun --ntasks-per-node=1 --kill-on-bad-exit=1 ${SLURM_CPUS_PER_TASK:+--cpus-per-task=$SLURM_CPUS_PER_TASK }%s ${cmd#torchrun }"\n' "$multinode"
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

if [ -z "$launcher_jobvar" ] && [ -z "$multinode" ]; then
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

# A job range is one array job; a job across nodes one batch job whose batch step starts the
# other nodes' torchrun with srun. Either is waited for by polling squeue.
if [ -n "$multinode" ]; then
  what="$nodes nodes"
  job_opts=(--output="$qdir/$name.out")
else
  what="$launcher_first-$launcher_last${max_jobs:+%$max_jobs}"
  job_opts=(--array="$what" --output="$qdir/$name-%a.out")
fi
out=$(sbatch "${slurm_opts[@]}" --parsable --job-name="$name" "${job_opts[@]}" "$script") || {
  echo "$0: sbatch failed: $out" >&2; exit 1; }
jobid=${out%%;*}
echo "$0: submitted Slurm job $jobid ($what): $command_line" >&2

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

if [ -n "$multinode" ]; then
  status_file=$qdir/$name.status.$launcher_first
  if [ ! -f "$status_file" ]; then
    state=$(sacct -n -P -j "$jobid" -o State 2>/dev/null | head -n 1)
    echo "$0: job left no exit status (Slurm state: ${state:-unknown}); see $log_pattern and $qdir/$name.out" >&2
    exit 1
  fi
  status=$(cat "$status_file")
  if [ "$status" != 0 ]; then
    echo "$0: job failed (code $status); see $log_pattern" >&2
    exit 1
  fi
  exit 0
fi

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
