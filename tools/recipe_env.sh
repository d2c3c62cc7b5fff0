# Sourced by every recipe's path.sh: the project's virtual environment and its tools on PATH,
# ASR_ROOT set to the project root, C-locale sorting as Kaldi's scripts expect.
ASR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ASR_ROOT
if [ ! -x "$ASR_ROOT/.venv/bin/asr" ]; then
  echo "path.sh: $ASR_ROOT/.venv is not set up; run $ASR_ROOT/tools/install.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="$ASR_ROOT/.venv/bin:$ASR_ROOT/tools:$PATH"
export PYTHONUNBUFFERED=1
export LC_ALL=C
