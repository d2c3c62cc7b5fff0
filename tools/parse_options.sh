#!/usr/bin/env bash
# Kaldi-style option parsing; source it after setting defaults:
#
#   stage=0; nj=4; corpus_dir=/data
#   . tools/parse_options.sh
#
# `--foo-bar VALUE` (or `--foo-bar=VALUE`) sets the already-defined variable foo_bar; an
# undefined one is an error. `--config FILE` sources FILE (shell assignments) first-come.
# `--help` prints $help_message (if set) and the options with their current values, then exits.
# Parsing stops at the first argument that does not start with `--`; the rest stay in "$@".

__po_usage() {
  [ -n "${help_message:-}" ] && printf '%s\n' "$help_message"
  echo "Options (current values):"
  for __po_var in ${__po_options:-}; do
    printf '  --%s %q\n' "${__po_var//_/-}" "${!__po_var}"
  done
}

# Record the variables defined before parsing, for --help.
__po_options=""
for __po_line in $(set | sed -n 's/^\([a-z][a-z0-9_]*\)=.*/\1/p'); do
  case "$__po_line" in __po_*|help_message) ;; *) __po_options+="$__po_line " ;; esac
done

while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h) __po_usage; exit 0 ;;
    --config)
      [ $# -ge 2 ] || { echo "$0: --config needs a file" >&2; exit 1; }
      [ -f "$2" ] || { echo "$0: config file '$2' not found" >&2; exit 1; }
      # shellcheck disable=SC1090
      . "$2"; shift 2 ;;
    --*=*)
      __po_name=${1%%=*}; __po_name=${__po_name#--}; __po_name=${__po_name//-/_}
      __po_value=${1#*=}
      if [ -z "${!__po_name+set}" ]; then echo "$0: invalid option ${1%%=*}" >&2; exit 1; fi
      printf -v "$__po_name" '%s' "$__po_value"; shift ;;
    --*)
      __po_name=${1#--}; __po_name=${__po_name//-/_}
      if [ -z "${!__po_name+set}" ]; then echo "$0: invalid option $1" >&2; exit 1; fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      # Booleans must be spelled out, as in Kaldi: --use-gpu true|false.
      case "${!__po_name}" in
        true|false) case "$2" in true|false) ;; *) echo "$0: $1 expects true or false, got '$2'" >&2; exit 1 ;; esac ;;
      esac
      printf -v "$__po_name" '%s' "$2"; shift 2 ;;
    *) break ;;
  esac
done
unset __po_line __po_name __po_value
true
