"""Repair a data directory in place, as Kaldi's ``utils/fix_data_dir.sh``, and say what was
dropped and repaired, with counts.

Repaired: CRLF endings, a missing final newline, leading whitespace, C-locale order, unusual
whitespace and ``<s> </s> #0`` in transcripts, ``~`` in paths, ``spk2utt`` (rebuilt from
``utt2spk``; ``utt2spk`` is made from ``spk2utt`` or as one speaker per utterance when absent),
segment ends of ``-1`` and segments a little past the end of their recording (clipped).
Dropped: lines that are not UTF-8, blank, duplicated (the first is kept), without a value or
malformed; utterances missing from any per-utterance file; segments of missing recordings or
far past their end; recordings, speakers and per-speaker lines nothing uses any more.
The original files are kept in ``DIR/.backup/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.files import utt2spk_to_spk2utt
from asr.data.tables import Problem, c_sort_key, format_float, write_kaldi_map
from asr.data.validate import (
    ILLEGAL_WORDS,
    RECO_FILES,
    SPK_FILES,
    UTT_FILES,
    scan_dir,
    validate_data_dir,
)
from asr.data.wav_audio import MAX_OVERSHOOT_S, entry_duration
from asr.data.wavscp import needs_shell, pipes_allowed
from asr.errors import AsrError, DataDirError

REPAIRED_KINDS = {
    "crlf": "CRLF line ending converted",
    "no-final-newline": "final newline added",
    "leading-space": "leading whitespace removed",
    "unsorted": "line out of order (file sorted)",
}
DROPPED_KINDS = {
    "utf8": "not valid UTF-8",
    "blank": "blank line",
    "duplicate": "duplicate id (first line kept)",
    "no-value": "no value",
    "id-space": "id holds whitespace",
    "bad-value": "malformed value",
}
_ODD_SPACE = re.compile(r"[^\S \t]")


@dataclass
class FixReport:
    path: Path
    dropped: Counter = field(default_factory=Counter)  # (file, reason) -> lines
    repaired: Counter = field(default_factory=Counter)  # (file, reason) -> lines
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # what -> (before, after)
    remaining: list[Problem] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for what, (before, after) in self.counts.items():
            out.append(f"{self.path}: kept {after} of {before} {what}")
        for (name, reason), count in sorted(self.dropped.items()):
            out.append(f"{self.path / name}: dropped {count}: {reason}")
        for (name, reason), count in sorted(self.repaired.items()):
            out.append(f"{self.path / name}: repaired {count}: {reason}")
        return out


def _clean_text(value: str) -> tuple[str, list[str]]:
    reasons = []
    if _ODD_SPACE.search(value):
        value = _ODD_SPACE.sub(" ", value)
        reasons.append("unusual whitespace replaced by a space")
    words = value.split(" ")
    if any(w in ILLEGAL_WORDS for w in words):
        value = " ".join(w for w in words if w not in ILLEGAL_WORDS)
        reasons.append("reserved symbols <s> </s> #0 removed")
    return (" ".join(value.split()) if reasons else value), reasons


def fix_data_dir(
    path: str | Path, check_audio: bool = True, allow_pipes: bool | None = None
) -> FixReport:
    """Repair ``path`` in place and return what was done and what is still wrong."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    scanned = scan_dir(path)
    if not scanned:
        raise DataDirError(f"{path}: no Kaldi data files here")
    report = FixReport(path)
    values: dict[str, dict[str, str]] = {}
    for name, scan in scanned.items():
        for problem in scan.problems:
            if problem.kind in DROPPED_KINDS:
                report.dropped[(name, DROPPED_KINDS[problem.kind])] += 1
            elif problem.kind in REPAIRED_KINDS:
                report.repaired[(name, REPAIRED_KINDS[problem.kind])] += 1
        values[name] = {key: line.value for key, line in scan.lines.items()}
    if "text" in values:
        for key, value in values["text"].items():
            values["text"][key], reasons = _clean_text(value)
            for reason in reasons:
                report.repaired[("text", reason)] += 1
    if "wav.scp" in values:
        for key, value in values["wav.scp"].items():
            if value.startswith("~"):
                values["wav.scp"][key] = os.path.expanduser(value)
                report.repaired[("wav.scp", "'~' expanded to the home directory")] += 1
    _ensure_utt2spk(values, report)

    segmented = "segments" in values
    utt_files = [n for n in (*UTT_FILES, "utt2spk") if n in values]
    utt_files += ["segments"] if segmented else [n for n in ("wav.scp", *RECO_FILES) if n in values]
    everyone = set().union(*(values[n] for n in utt_files))
    keep = set(everyone)
    for name in utt_files:
        missing = keep - set(values[name])
        if missing:
            report.dropped[(name, "utterance missing from this file (dropped everywhere)")] += len(
                missing
            )
            keep -= missing
    if segmented:
        keep = _fix_segments(values, scanned, keep, report, check_audio, allow_pipes)
    report.counts["utterances"] = (len(everyone), len(keep))

    utt2spk = {u: s for u, s in values["utt2spk"].items() if u in keep}
    speakers = set(utt2spk.values())
    all_speakers = set(values["utt2spk"].values())
    if "spk2utt" in values:
        all_speakers |= set(values["spk2utt"])
    report.counts["speakers"] = (len(all_speakers), len(speakers))
    out: dict[str, dict[str, str]] = {}
    for name in utt_files:
        out[name] = {k: v for k, v in values[name].items() if k in keep}
    for name in SPK_FILES:
        if name in values:
            out[name] = {k: v for k, v in values[name].items() if k in speakers}
            if len(out[name]) < len(values[name]):
                report.dropped[(name, "speaker with no utterance left")] += len(values[name]) - len(
                    out[name]
                )
    if segmented:
        recordings = {seg.split()[0] for seg in out["segments"].values()}
        report.counts["recordings"] = (len(values.get("wav.scp", {})), len(recordings))
        for name in ("wav.scp", *RECO_FILES):
            if name in values:
                out[name] = {k: v for k, v in values[name].items() if k in recordings}
                unused = len(values[name]) - len(out[name])
                if unused:
                    report.dropped[(name, "recording used by no kept segment")] += unused
    _write(path, scanned, out, utt2spk)
    report.remaining = validate_data_dir(
        path,
        require_text="text" in out,
        require_wav="wav.scp" in out,
        check_audio=check_audio,
        allow_pipes=allow_pipes,
    )
    return report


def _ensure_utt2spk(values: dict[str, dict[str, str]], report: FixReport) -> None:
    if "utt2spk" in values:
        return
    if "spk2utt" in values:
        values["utt2spk"] = {u: s for s, us in values["spk2utt"].items() for u in us.split()}
        report.repaired[("utt2spk", "created from spk2utt")] += len(values["utt2spk"])
        return
    source = next((n for n in ("segments", "wav.scp", "text") if n in values), None)
    if source is None:
        raise DataDirError(f"{report.path}: no utt2spk, spk2utt, segments, wav.scp or text")
    values["utt2spk"] = {u: u for u in values[source]}
    report.repaired[("utt2spk", f"created from {source}, one speaker per utterance")] += len(
        values["utt2spk"]
    )


def _fix_segments(
    values: dict[str, dict[str, str]],
    scanned: dict,
    keep: set[str],
    report: FixReport,
    check_audio: bool,
    allow_pipes: bool | None,
) -> set[str]:
    segments = scanned["segments"].values  # parsed RecordingSegment per (well-formed) line
    wav = scanned["wav.scp"].values if "wav.scp" in scanned else {}
    durations: dict[str, float] = {}
    if "reco2dur" in scanned:
        durations.update(scanned["reco2dur"].values)
    kept = set()
    for utt in sorted(keep, key=c_sort_key):
        seg = segments[utt]
        if seg.recording not in wav:
            report.dropped[("segments", "recording not in wav.scp")] += 1
            continue
        end = seg.end
        needs_duration = end == -1 or check_audio
        if needs_duration and seg.recording not in durations:
            entry = wav[seg.recording]
            if not needs_shell(entry) or pipes_allowed(allow_pipes):
                try:
                    seconds = entry_duration(entry, pipes_allowed(allow_pipes))
                except AsrError:
                    seconds = None
                if seconds is not None:
                    durations[seg.recording] = seconds
        total = durations.get(seg.recording)
        if total is not None:
            if end == -1:
                end = total
                report.repaired[("segments", "end -1 replaced by the recording's duration")] += 1
            elif end > total and end - total <= MAX_OVERSHOOT_S:
                end = total
                report.repaired[("segments", "end clipped to the recording's end")] += 1
            elif end > total or seg.start >= total:
                report.dropped[("segments", "segment past the end of its recording")] += 1
                continue
        if end != seg.end:
            values["segments"][utt] = (
                f"{seg.recording} {format_float(seg.start)} {format_float(round(end, 6))}"
            )
        kept.add(utt)
    return kept


def _write(
    path: Path,
    scanned: dict,
    out: dict[str, dict[str, str]],
    utt2spk: dict[str, str],
) -> None:
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for name in list(scanned) + ["utt2spk"]:
        if (path / name).is_file():
            shutil.copy2(path / name, backup / name)
    for name, entries in out.items():
        write_kaldi_map(path / name, entries)
    write_kaldi_map(path / "utt2spk", utt2spk)
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    write_kaldi_map(path / "spk2utt", {s: " ".join(us) for s, us in spk2utt.items()})
