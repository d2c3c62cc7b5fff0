"""Run NIST sclite (SCTK) on the same transcripts, to check our counts against the reference
scorer. Debian's ``sctk`` package installs it as ``/usr/lib/sctk/bin/sclite`` (and the
``sctk sclite`` wrapper); ``tools/install_sctk.sh`` installs it.

sclite gives some tokens a meaning of their own: ``(word)`` is optionally deletable, ``@`` is
the empty word, ``{ a / b }`` lists alternatives, and a leading or trailing ``-`` marks a
fragment. Our scorer treats every token as a plain word, so the two agree on transcripts
without such tokens (:func:`plain_words` checks). sclite is case-insensitive unless run with
``-s``; ``case_sensitive=True`` (the default here) matches ``--normalize none``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEBIAN_SCLITE = Path("/usr/lib/sctk/bin/sclite")

_SPECIAL = re.compile(r"^\(.*\)$|^@$|^[{}/]$|^-|-$|[()]")
_SUM = re.compile(r"^\s*\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|")
_ID = re.compile(r"^id: \((.*)\)\s*$")
_SCORES = re.compile(r"^Scores: \(#C #S #D #I\)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)")


def find_sclite() -> str | None:
    """The sclite executable: on PATH, else where Debian's sctk puts it; None when absent."""
    found = shutil.which("sclite")
    if found:
        return found
    return str(DEBIAN_SCLITE) if DEBIAN_SCLITE.is_file() else None


def plain_words(text: str) -> bool:
    """True when no token of ``text`` has a special meaning for sclite."""
    return not any(_SPECIAL.search(w) for w in text.split())


@dataclass
class ScliteCounts:
    """sclite's totals: correct, substituted, deleted, inserted words; sentences."""

    corr: int
    subs: int
    dels: int
    ins: int
    sentences: int
    sentence_errors: int
    ref_words: int
    per_utt: dict[str, tuple[int, int, int, int]]  # id -> (C, S, D, I), when asked for


def write_trn(path: str | Path, entries: dict[str, str]) -> None:
    """``words (id)`` lines, in the order of ``entries``."""
    Path(path).write_text("".join(f"{text} ({utt})\n" for utt, text in entries.items()), encoding="utf-8")


def run_sclite(
    refs: dict[str, str],
    hyps: dict[str, str],
    sclite: str | None = None,
    case_sensitive: bool = True,
    per_utt: bool = False,
) -> ScliteCounts:
    """Score with sclite (``-i rm``, UTF-8). Every reference id needs a hypothesis line (an
    empty one for a missing hypothesis), as sclite requires; ids must not hold spaces."""
    sclite = sclite or find_sclite()
    if sclite is None:
        raise FileNotFoundError("sclite not found; run tools/install_sctk.sh")
    with tempfile.TemporaryDirectory(prefix="sclite.") as tmp:
        ref_trn, hyp_trn = Path(tmp) / "ref.trn", Path(tmp) / "hyp.trn"
        write_trn(ref_trn, refs)
        write_trn(hyp_trn, {u: hyps.get(u, "") for u in refs})
        cmd = [sclite, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm",
               "-e", "utf-8", "-f", "0", "-o", "rsum", *(["pralign"] if per_utt else []), "stdout"]
        if case_sensitive:
            cmd.append("-s")
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"sclite failed ({out.returncode}): {out.stderr.strip() or out.stdout[-500:]}")
    counts = None
    utts: dict[str, tuple[int, int, int, int]] = {}
    current = None
    for line in out.stdout.splitlines():
        if m := _SUM.match(line):
            snt, wrd, c, s, d, i, _err, serr = (int(x) for x in m.groups())
            counts = (c, s, d, i, snt, serr, wrd)
        elif m := _ID.match(line):
            current = m.group(1)
        elif (m := _SCORES.match(line)) and current is not None:
            utts[current] = tuple(int(x) for x in m.groups())  # type: ignore[assignment]
    if counts is None:
        raise RuntimeError("no 'Sum' row in sclite's output")
    c, s, d, i, snt, serr, wrd = counts
    return ScliteCounts(c, s, d, i, snt, serr, wrd, utts)
