"""An independent check of a data directory against Kaldi's documented rules, written with the
same coreutils/awk tools Kaldi's own scripts use (LC_ALL=C sort, awk fields, cmp), so that the
toolkit's Python validator is not checking itself. Kaldi's scripts are not shipped here.

Rules (Kaldi's "Data preparation" documentation and utils/validate_data_dir.sh):
- every file ends with a newline; first fields are unique and in LC_ALL=C order;
- utt2spk has two fields per line and is also sorted by speaker (speaker ids prefix utterances);
- spk2utt is utt2spk inverted; text, wav.scp (or segments), feats.scp, utt2dur list exactly the
  utterances of utt2spk;
- segments has four fields with end > start, and its recordings are exactly wav.scp's ids;
- text holds no <s>, </s> or #0.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = r"""
set -u
export LC_ALL=C
d=$1
fail() { echo "$*"; bad=1; }
bad=0
firsts() { awk '{print $1}' "$1"; }
for f in utt2spk spk2utt; do [ -s "$d/$f" ] || fail "$f missing or empty"; done
[ $bad = 0 ] || exit 0
for f in "$d"/*; do
  [ -f "$f" ] || continue
  case "$(basename "$f")" in .*) continue ;; esac
  [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ] && fail "$f: no final newline"
  firsts "$f" | sort -u | cmp -s - <(firsts "$f") || fail "$f: not sorted or has duplicates"
done
awk 'NF != 2 {exit 1}' "$d/utt2spk" || fail "utt2spk: not two fields"
sort -k2 "$d/utt2spk" | cmp -s - "$d/utt2spk" || fail "utt2spk: not sorted by speaker"
awk '{for (i = 2; i <= NF; i++) print $i, $1}' "$d/spk2utt" | sort | cmp -s - "$d/utt2spk" \
  || fail "spk2utt does not match utt2spk"
firsts "$d/utt2spk" > "$TMPDIR/utts"
for f in text feats.scp utt2dur utt2num_frames utt2uniq; do
  [ -f "$d/$f" ] || continue
  firsts "$d/$f" | cmp -s - "$TMPDIR/utts" || fail "$f: utterances differ from utt2spk"
done
if [ -f "$d/text" ] && grep -qwE '<s>|</s>|#0' "$d/text"; then fail "text: illegal symbol"; fi
if [ -f "$d/segments" ]; then
  firsts "$d/segments" | cmp -s - "$TMPDIR/utts" || fail "segments: utterances differ"
  awk 'NF != 4 || $4 <= $3 {exit 1}' "$d/segments" || fail "segments: bad line"
  awk '{print $2}' "$d/segments" | sort -u | cmp -s - <(firsts "$d/wav.scp") \
    || fail "segments and wav.scp recordings differ"
elif [ -f "$d/wav.scp" ]; then
  firsts "$d/wav.scp" | cmp -s - "$TMPDIR/utts" || fail "wav.scp: utterances differ"
fi
exit 0
"""


def kaldi_check(data_dir: str | Path, tmp_dir: str | Path) -> list[str]:
    """The rules ``data_dir`` breaks (empty when it is a valid Kaldi data directory)."""
    assert shutil.which("bash") and shutil.which("awk"), "bash and awk are needed"
    result = subprocess.run(
        ["bash", "-c", SCRIPT, "kaldi_check", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_dir)},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
