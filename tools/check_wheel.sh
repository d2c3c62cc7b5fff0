#!/usr/bin/env bash
# Build the wheel from a clean copy of the working tree, install it (not editable) into a fresh
# virtual environment, and run the installed commands from a directory outside the repository:
# `transcribe --help`, `asr train --config model/small_cpu --help`, a preset by name,
# `asr score` on two tiny files, and one epoch of training a tiny model on a made-up Kaldi data
# directory, then transcribing with it. Fails on the first check that does not hold.
#
#   tools/check_wheel.sh [--python PYTHON] [--keep]
#
# --python PYTHON  interpreter whose packages (torch, numpy, ...) the new environment borrows
#                  (default: .venv/bin/python); nothing is downloaded, the wheel installs with
#                  --no-deps and `pip check` then tests its requirements against those packages
# --keep           leave the work directory (its path is printed) instead of removing it
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=$root/.venv/bin/python
keep=false
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "check_wheel.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ ! -x "$python" ]; then
  echo "check_wheel.sh: $python not found; run tools/install.sh first or pass --python" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/asr-wheel.XXXXXX")
if $keep; then echo "check_wheel.sh: work directory $work"; else trap 'rm -rf "$work"' EXIT; fi
step() { echo "check_wheel.sh: $*"; }
start=$SECONDS

# 1. A clean copy: what git tracks or would track, so that no stale build/ output or local
# experiment ends up in the wheel.
mkdir -p "$work/src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard |
    (cd "$root" && while IFS= read -r -d '' f; do
       if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi  # skip deleted files
     done | tar --null --no-recursion -T - -cf -) | tar -xf - -C "$work/src"
else
  tar -C "$root" --exclude=.venv --exclude=build --exclude=dist --exclude='*.egg-info' \
    --exclude='recipes/*/data' --exclude='recipes/*/exp' -cf - . | tar -xf - -C "$work/src"
fi

# 2. The wheel, built with the setuptools already installed (no download).
step "building the wheel"
"$python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$work/dist" "$work/src" \
  > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
wheel=$(ls "$work"/dist/asr-*.whl)
step "built $(basename "$wheel")"
"$python" - "$wheel" <<'PY'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
presets = sorted(n for n in names if n.startswith("asr/conf/"))
groups = {n.split("/")[2] for n in presets}
missing = {"features", "model", "train"} - groups
if missing or "asr/conf/model/small_cpu.yaml" not in presets:
    sys.exit(f"check_wheel.sh: the wheel lacks presets of {sorted(missing) or ['model']}")
stray = [n for n in names if n.split("/")[0] not in ("asr",) and ".dist-info/" not in n]
if stray:
    sys.exit(f"check_wheel.sh: the wheel holds files outside asr/: {stray[:5]}")
print(f"check_wheel.sh: {len(names)} files, {len(presets)} presets under asr/conf/")
PY

# 3. A fresh environment that sees the borrowed packages through a .pth file (after its own
# site-packages, so the installed wheel, not the source tree, is what `import asr` finds).
step "installing into a fresh environment"
"$python" -m venv --without-pip "$work/venv"
borrowed=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$borrowed" > "$site/borrowed-packages.pth"
"$python" -m pip --python "$work/venv/bin/python" install --quiet --no-deps --no-index "$wheel"
# Its requirements (the torch range among them) against the borrowed packages; other
# packages' complaints are not the wheel's business.
"$python" -m pip --python "$work/venv/bin/python" check > "$work/check.log" 2>&1 || true
if grep -i '^asr ' "$work/check.log" >&2; then
  echo "check_wheel.sh: the installed wheel's requirements are not met (above)" >&2; exit 1
fi
export PATH="$work/venv/bin:$PATH"
unset ASR_MODEL PYTHONPATH

# 4. The commands, from outside the repository.
mkdir -p "$work/run" && cd "$work/run"
where=$(python -c 'import asr; print(asr.__file__)')
case "$where" in
  "$site"/*) step "asr imports from $where" ;;
  *) echo "check_wheel.sh: asr imports from $where, not from the installed wheel" >&2; exit 1 ;;
esac
transcribe --help > /dev/null
asr train --config model/small_cpu --help > /dev/null
asr train --config model/ctc_3l_250h.yaml --print-params --feat-dim 123 | grep -q "parameters: 3,789,062"
asr train --list-presets | grep -q "model/small_cpu"
if asr train --config model/ctc_5l_25h --print-params 2> err.txt; then
  echo "check_wheel.sh: a misspelt preset was accepted" >&2; exit 1
fi
grep -q "nearest: model/ctc_5l_250h" err.txt
step "transcribe --help, asr train --config/--list-presets: ok"

printf 'a one two three\nb four five\n' > ref.txt
printf 'a one two tree\nb four five\n' > hyp.txt
asr score --ref ref.txt --hyp hyp.txt > score.txt
grep -q '%WER 20.00 \[ 1 / 5, 0 ins, 0 del, 1 sub \]' score.txt
step "asr score: $(grep '%WER' score.txt)"

# A made-up Kaldi data dir: 8 kHz tones, two "words".
python - <<'PY'
from pathlib import Path

import numpy as np
import soundfile as sf

data = Path("data")
(data / "wav").mkdir(parents=True)
scp, text, utt2spk = [], [], []
for i in range(6):
    word, freq = ("yes", 440.0) if i % 2 == 0 else ("no", 880.0)
    t = np.arange(int(0.6 * 8000)) / 8000
    wav = data / "wav" / f"u{i}.wav"
    sf.write(wav, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000)
    scp.append(f"u{i} {wav.resolve()}\n")
    text.append(f"u{i} {word}\n")
    utt2spk.append(f"u{i} s{i % 2}\n")
(data / "wav.scp").write_text("".join(scp))
(data / "text").write_text("".join(text))
(data / "utt2spk").write_text("".join(utt2spk))
spk = {}
for line in utt2spk:
    utt, s = line.split()
    spk.setdefault(s, []).append(utt)
(data / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk.items())))
PY
step "training one epoch on a made-up data dir"
asr train --train data --dev data --exp-dir exp --no-progress \
  --config features/logmel40_8k --config model/small_cpu --config train/adam \
  --set train.epochs=1 --set model.num_layers=1 --set model.hidden_size=8 \
  --set train.early_stop_patience=0 > train.out 2>&1 || { tail -n 20 train.out >&2; exit 1; }
for f in final/model.pt final/config.yaml final/tokens.txt train.log; do
  [ -f "exp/$f" ] || { echo "check_wheel.sh: training wrote no exp/$f" >&2; exit 1; }
done
transcribe --model exp/final --device cpu data/wav/u0.wav > transcript.txt
step "trained and transcribed ('$(cat transcript.txt)', untrained-quality text is expected)"
step "all checks passed in $((SECONDS - start)) s"
