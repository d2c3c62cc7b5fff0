# Shared by run_local.sh and run_slurm.sh (sourced): the parts of Kaldi's launcher interface
#
#   LAUNCHER [options] [JOB=1:N] LOG COMMAND...
#
# that do not depend on where the jobs run.

# Parse "JOB=1:N" or "JOB=3" into launcher_jobvar, launcher_first, launcher_last; false if $1
# is not a job range.
launcher_parse_range() {
  if [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
    launcher_jobvar=${BASH_REMATCH[1]}; launcher_first=${BASH_REMATCH[2]}
    launcher_last=${BASH_REMATCH[3]}
  elif [[ "$1" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)$ ]]; then
    launcher_jobvar=${BASH_REMATCH[1]}; launcher_first=${BASH_REMATCH[2]}
    launcher_last=$launcher_first
  else
    return 1
  fi
  if [ "$launcher_last" -lt "$launcher_first" ]; then
    echo "$0: empty job range $1" >&2
    exit 1
  fi
}

# Print the command line as Kaldi's run.pl builds it for the shell: a word without whitespace
# goes in as it is (so an escaped \| or \> in the recipe becomes a pipe or redirection),
# anything else is quoted ("..." or, when it holds a double quote, '...').
launcher_join() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[^[:space:]]+$ ]]; then
      out+="$a "
    elif [[ "$a" == *\"* ]]; then
      out+="'$a' "
    else
      out+="\"$a\" "
    fi
  done
  printf '%s' "${out% }"
}

# A job range needs a log name that holds the job variable, or every job would write one file.
launcher_check_log() {
  local log=$1
  if [ -n "${launcher_jobvar:-}" ] && [ "$launcher_first" != "$launcher_last" ] \
      && [[ "$log" != *"$launcher_jobvar"* ]]; then
    echo "$0: $launcher_jobvar=$launcher_first:$launcher_last runs several jobs but the log" \
      "'$log' does not contain $launcher_jobvar; each job needs its own log" >&2
    exit 1
  fi
}
