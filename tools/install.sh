#!/usr/bin/env bash
# Create or reuse the project's virtual environment (.venv), install asr (editable, with the
# `dev` extra) with the tested torch/torchaudio pair, and check that they import together.
#
#   tools/install.sh [--wheelhouse DIR] [--python PYTHON] [--force]
#
# --wheelhouse DIR  install only from wheels in DIR (offline hosts: `pip download` them elsewhere)
# --python PYTHON   interpreter used to create .venv (default: python3; needs >= 3.10)
# --force           reinstall even when nothing changed
# Idempotent: when setup.cfg, pyproject.toml and this script are unchanged since the last
# successful install, it only re-checks the imports (a few seconds).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
python=${PYTHON:-python3}
wheelhouse=""
force=false
# setup.cfg accepts a range of torch releases (README); the development install pins the pair
# the suite is run with, so that every checkout tests the same one.
torch_tested=2.11.0

while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) wheelhouse=$(cd "$2" && pwd); shift 2 ;;
    --python) python=$2; shift 2 ;;
    --force) force=true; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v "$python" >/dev/null 2>&1; then
  echo "install.sh: '$python' not found; install Python >= 3.10 or pass --python" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "install.sh: $("$python" --version 2>&1) is too old; asr needs Python >= 3.10" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "install.sh: creating $venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.asr-install-stamp"
want=$(cat "$root/setup.cfg" "$root/pyproject.toml" "$root/tools/install.sh" | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)

if $force || [ "$want" != "$have" ]; then
  pip_args=(--disable-pip-version-check)
  if [ -n "$wheelhouse" ]; then
    pip_args+=(--no-index --find-links "$wheelhouse")
  fi
  echo "install.sh: installing asr[dev] into $venv (first time: torch is a large download)"
  log="$venv/install.log"
  rm -f "$stamp"
  if ! { "$venv/bin/python" -m pip install "${pip_args[@]}" --upgrade pip setuptools wheel &&
         "$venv/bin/python" -m pip install "${pip_args[@]}" -e "$root[dev]" \
           "torch==$torch_tested" "torchaudio==$torch_tested"; } > "$log" 2>&1; then
    grep -v -e 'is ignored: it is neither a file nor a directory' "$log" | tail -n 30 >&2
    echo "install.sh: pip failed; the full log is $log" >&2
    exit 1
  fi
fi

# torch and torchaudio are ABI-coupled: a mismatched pair fails here rather than at first use.
if ! "$venv/bin/python" - <<'PY'
import sys
try:
    import torch
    import torchaudio
except Exception as exc:  # noqa: BLE001 - report any import failure in one line
    print(f"install.sh: torch/torchaudio do not import together: {exc}", file=sys.stderr)
    print("install.sh: rerun `tools/install.sh --force` (they must be a matching pair, "
          "see setup.cfg)", file=sys.stderr)
    sys.exit(1)
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "cpu"
print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
      f"CUDA usable: {'yes' if cuda else 'no'}, device: {name}")
PY
then
  exit 1
fi
echo "$want" > "$stamp"
