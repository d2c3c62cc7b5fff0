# Sourced by the data-directory wrappers: sets $asr to the toolkit's command (the one on PATH,
# else the project's .venv next to this directory).
if command -v asr >/dev/null 2>&1; then
  asr=asr
else
  asr="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/asr"
  if [ ! -x "$asr" ]; then
    echo "$0: 'asr' is not on PATH and $asr does not exist; run tools/install.sh" >&2
    exit 1
  fi
fi
