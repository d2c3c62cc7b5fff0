#!/usr/bin/env bash
# Build KenLM's `lmplz` (n-gram estimation, modified Kneser-Ney) and `build_binary` (ARPA ->
# KenLM binary) from the KenLM source distribution on PyPI and install them into .venv/bin.
#
#   tools/install_kenlm.sh [--venv DIR] [--jobs N] [--force]
#
# Debian build dependencies are installed with apt-get when missing (root, or sudo). Running it
# again is a no-op once both programs are installed and start; --force rebuilds.
set -euo pipefail
. "$(dirname "$0")/apt_lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv
jobs=$(nproc 2>/dev/null || echo 2)
force=false
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) venv=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --force) force=true; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_kenlm.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  echo "install_kenlm.sh: no virtual environment at $venv; run tools/install.sh first" >&2
  exit 1
fi

works() {
  # Both print their usage with a non-zero exit status; the text shows that they run.
  local help
  help=$("$venv/bin/lmplz" --help 2>&1 || true)
  [[ $help == *--order* ]] || return 1
  help=$("$venv/bin/build_binary" 2>&1 || true)
  [[ $help == *Usage* ]]
}
if ! $force && [ -x "$venv/bin/lmplz" ] && [ -x "$venv/bin/build_binary" ] && works; then
  echo "install_kenlm.sh: lmplz and build_binary already in $venv/bin"
  exit 0
fi

packages=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
          libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
apt_install install_kenlm.sh "${packages[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/kenlm-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/build.log
fail() { echo "install_kenlm.sh: $1; the last lines of the log:" >&2; tail -n 20 "$log" >&2; exit 1; }

echo "install_kenlm.sh: fetching the kenlm source distribution from PyPI"
# --no-binary for kenlm only: the build tools pip needs to read its metadata come from the
# venv, not from source (which would compile CMake itself).
"$venv/bin/python" -m pip download kenlm --no-binary kenlm --no-deps --no-build-isolation \
  --disable-pip-version-check -d "$work" >"$log" 2>&1 || fail "pip download kenlm failed"
tar -xzf "$work"/kenlm-*.tar.gz -C "$work" || fail "cannot unpack the kenlm source"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kenlm-*' | head -n 1)

echo "install_kenlm.sh: building lmplz and build_binary ($jobs jobs; a few minutes)"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
  -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF >>"$log" 2>&1 || fail "cmake configuration failed"
cmake --build "$work/build" --target lmplz build_binary -j "$jobs" >>"$log" 2>&1 ||
  fail "compilation failed"

for prog in lmplz build_binary; do
  install -m 0755 "$work/build/bin/$prog" "$venv/bin/$prog.tmp"
  mv -f "$venv/bin/$prog.tmp" "$venv/bin/$prog"
done
works || fail "the installed programs do not run"
echo "install_kenlm.sh: installed $venv/bin/lmplz and $venv/bin/build_binary"
