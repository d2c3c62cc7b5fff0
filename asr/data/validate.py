"""Check a data directory the way Kaldi's ``utils/validate_data_dir.sh`` does, but report every
problem (not just the first) with its file and line.

Per file: non-UTF-8 bytes, CRLF endings, blank lines, a missing final newline, ids holding
whitespace, duplicate ids, ids out of C-locale order, malformed values (segments, durations,
genders, channels, ...), disallowed whitespace and ``<s> </s> #0`` in ``text``, ``~`` paths in
``wav.scp``. Across files: the utterance lists of ``utt2spk``, ``text``, ``wav.scp`` or
``segments``, ``feats.scp`` and the other per-utterance files must be identical; ``spk2utt``
must match ``utt2spk`` (and ``utt2spk`` be sorted by speaker too); segments must name
recordings of ``wav.scp`` and every recording must be used; per-speaker and per-recording
files must cover exactly the speakers and recordings. With ``check_audio``: audio files must
exist and segments must end within their recording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.files import FORMATS
from asr.data.tables import Line, Problem, c_sort_key, scan_kaldi_file
from asr.data.wav_audio import entry_duration
from asr.data.wavscp import WavArk, WavPath, needs_shell, pipes_allowed
from asr.errors import AsrError

ILLEGAL_WORDS = ("<s>", "</s>", "#0")
_ODD_SPACE = re.compile(r"[^\S \t]")
# Segments are usually written with 2 decimals: allow that much rounding past the end.
END_TOLERANCE_S = 0.01

UTT_FILES = ("text", "feats.scp", "utt2dur", "utt2num_frames", "utt2lang", "utt2uniq",
             "utt2warp", "vad.scp")
SPK_FILES = ("spk2gender", "cmvn.scp", "spk2warp")
RECO_FILES = ("reco2file_and_channel", "reco2dur")


@dataclass
class ScannedFile:
    """One file of a data directory: its usable lines, parsed values and problems."""

    path: Path
    lines: dict[str, Line] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def check_value(name: str, value: str) -> list[tuple[str, str, str]]:
    """Extra per-value checks: ``(kind, severity, message)`` for each problem."""
    found = []
    if name == "text":
        odd = _ODD_SPACE.search(value)
        if odd:
            found.append(("text-space", "error", f"transcript holds a whitespace character "
                          f"U+{ord(odd[0]):04X} that Kaldi does not allow"))
        illegal = [w for w in value.split() if w in ILLEGAL_WORDS]
        if illegal:
            found.append(("text-symbol", "error", f"transcript holds the reserved symbol "
                          f"'{illegal[0]}' (<s>, </s> and #0 are not words)"))
    elif name == "wav.scp" and value.startswith("~"):
        found.append(("tilde", "error", "path starts with '~', which file reading does not "
                      "expand; write the full path"))
    elif name == "reco2file_and_channel" and value.split()[-1:] == ["1"]:
        found.append(("channel", "warning", "channel '1' should be A or B"))
    return found


def scan_file(path: Path) -> ScannedFile:
    """Every problem of one file; values that parse are kept for the cross-file checks."""
    name = path.name
    fmt = FORMATS[name]
    scanned = ScannedFile(path)
    lines, scanned.problems = scan_kaldi_file(path, allow_empty_value=fmt.allow_empty)
    for line in lines:
        try:
            value = fmt.parse(line.value)
        except ValueError as exc:
            scanned.problems.append(Problem(path, line.lineno, f"'{line.key}': {exc}", "bad-value"))
            continue
        for kind, severity, message in check_value(name, line.value):
            scanned.problems.append(Problem(path, line.lineno, f"'{line.key}': {message}",
                                            kind, severity))  # type: ignore[arg-type]
        scanned.lines[line.key] = line
        scanned.values[line.key] = value
    return scanned


def scan_dir(path: Path) -> dict[str, ScannedFile]:
    return {
        name: scan_file(path / name) for name in FORMATS if (path / name).is_file()
    }


def _compare_ids(
    ref: ScannedFile, other: ScannedFile, what: str, problems: list[Problem]
) -> None:
    """Ids of ``other`` must be exactly those of ``ref`` (both located by line)."""
    for key, line in other.lines.items():
        if key not in ref.lines:
            problems.append(Problem(other.path, line.lineno,
                                    f"{what} '{key}' is not in {ref.path.name}", "extra"))
    for key, line in ref.lines.items():
        if key not in other.lines:
            problems.append(Problem(ref.path, line.lineno,
                                    f"{what} '{key}' has no line in {other.path.name}", "missing"))


def _check_speakers(files: dict[str, ScannedFile], spk_sort: bool, problems: list[Problem]) -> None:
    utt2spk = files["utt2spk"]
    spk2utt = files.get("spk2utt")
    expected: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for utt in sorted(utt2spk.values, key=c_sort_key):
        spk = utt2spk.values[utt]
        expected.setdefault(spk, []).append(utt)
        first_line.setdefault(spk, utt2spk.lines[utt].lineno)
    if spk_sort:
        previous = None
        for utt, line in utt2spk.lines.items():
            spk = utt2spk.values[utt]
            if previous is not None and c_sort_key(spk) < c_sort_key(previous):
                problems.append(Problem(
                    utt2spk.path, line.lineno,
                    f"utt2spk is not sorted by speaker too ('{spk}' after '{previous}'); make "
                    "speaker ids prefixes of utterance ids", "spk-sort"))
                break
            previous = spk
    if len(expected) == 1:
        problems.append(Problem(utt2spk.path, None, "only one speaker; per-speaker statistics "
                                "will be pooled over all utterances", "one-speaker", "warning"))
    if spk2utt is None:
        return
    for spk, utts in expected.items():
        if spk not in spk2utt.values:
            problems.append(Problem(utt2spk.path, first_line[spk],
                                    f"speaker '{spk}' is not in spk2utt", "missing"))
        elif spk2utt.values[spk] != utts:
            problems.append(Problem(
                spk2utt.path, spk2utt.lines[spk].lineno,
                f"utterances of speaker '{spk}' differ from utt2spk "
                f"({len(spk2utt.values[spk])} here, {len(utts)} there)", "spk2utt"))
    for spk, line in spk2utt.lines.items():
        if spk not in expected:
            problems.append(Problem(spk2utt.path, line.lineno,
                                    f"speaker '{spk}' has no utterance in utt2spk", "extra"))
    for name in SPK_FILES:
        if name not in files:
            continue
        for spk, line in files[name].lines.items():
            if spk not in expected:
                problems.append(Problem(files[name].path, line.lineno,
                                        f"speaker '{spk}' is not in utt2spk", "extra"))
        for spk in expected:
            if spk not in files[name].lines:
                problems.append(Problem(utt2spk.path, first_line[spk],
                                        f"speaker '{spk}' has no line in {name}", "missing"))


def _check_recordings(files: dict[str, ScannedFile], problems: list[Problem]) -> None:
    segments, wav = files["segments"], files.get("wav.scp")
    if wav is None:
        problems.append(Problem(segments.path, None, "segments without wav.scp", "missing-file"))
        return
    used: set[str] = set()
    for utt, seg in segments.values.items():
        line = segments.lines[utt].lineno
        used.add(seg.recording)
        if seg.recording not in wav.lines:
            problems.append(Problem(segments.path, line,
                                    f"recording '{seg.recording}' is not in wav.scp", "extra"))
        if seg.end == -1:
            problems.append(Problem(
                segments.path, line, f"'{utt}': end -1 (to the end of the recording) is "
                "rejected by Kaldi's validate_data_dir.sh; `asr data fix` writes the duration",
                "end-minus-one"))
    for reco, line in wav.lines.items():
        if reco not in used:
            problems.append(Problem(wav.path, line.lineno,
                                    f"recording '{reco}' is used by no segment", "unused"))
    for name in RECO_FILES:
        if name in files:
            _compare_ids(wav, files[name], "recording", problems)


def _check_audio(
    files: dict[str, ScannedFile], allow_pipes: bool, problems: list[Problem]
) -> None:
    wav = files["wav.scp"]
    durations: dict[str, float] = {}
    if "reco2dur" in files:
        durations = dict(files["reco2dur"].values)
    for reco, line in wav.lines.items():
        entry = wav.values[reco]
        base = entry
        while not isinstance(base, WavPath) and hasattr(base, "source"):
            base = base.source
        if isinstance(base, (WavPath, WavArk)) and not Path(base.path).is_file():
            problems.append(Problem(wav.path, line.lineno,
                                    f"'{reco}': audio file {base.path} not found", "no-audio"))
            continue
        if "segments" not in files or reco in durations:
            continue
        if needs_shell(entry) and not allow_pipes:
            continue  # its length needs running the command
        try:
            seconds = entry_duration(entry, allow_pipes)
        except AsrError as exc:
            problems.append(Problem(wav.path, line.lineno, f"'{reco}': {exc}", "bad-audio"))
            continue
        if seconds is not None:
            durations[reco] = seconds
    if "segments" not in files:
        return
    segments = files["segments"]
    for utt, seg in segments.values.items():
        total = durations.get(seg.recording)
        if total is None or seg.end == -1:
            continue
        if seg.end > total + END_TOLERANCE_S:
            problems.append(Problem(
                segments.path, segments.lines[utt].lineno,
                f"'{utt}' ends at {seg.end:g} s, after the end of recording '{seg.recording}' "
                f"({total:.2f} s)", "beyond-end"))
        elif seg.start >= total:
            problems.append(Problem(
                segments.path, segments.lines[utt].lineno,
                f"'{utt}' starts at {seg.start:g} s, after the end of recording "
                f"'{seg.recording}' ({total:.2f} s)", "beyond-end"))


def validate_data_dir(
    path: str | Path,
    *,
    require_text: bool = True,
    require_wav: bool = True,
    require_feats: bool = False,
    spk_sort: bool = True,
    check_audio: bool = True,
    allow_pipes: bool | None = None,
) -> list[Problem]:
    """Every problem of the data directory ``path`` (errors and warnings), in file order."""
    path = Path(path)
    if not path.is_dir():
        return [Problem(path, None, "data directory not found", "missing-file")]
    files = scan_dir(path)
    problems = [p for f in files.values() for p in f.problems]
    required = {"utt2spk": "", "spk2utt": " (asr data fix writes it from utt2spk)"}
    if require_text:
        required["text"] = " (if this is by design, use --no-text)"
    if require_wav:
        required["wav.scp"] = " (if this is by design, use --no-wav)"
    if require_feats:
        required["feats.scp"] = " (if this is by design, use --no-feats)"
    for name, hint in required.items():
        if name not in files:
            problems.append(Problem(path / name, None, f"file not found{hint}", "missing-file"))
        elif not files[name].lines and not files[name].problems:
            problems.append(Problem(path / name, None, "empty file", "empty"))
    segmented = "segments" in files
    ref = files.get("utt2spk") or files.get("segments") or files.get("wav.scp")
    if ref is not None:
        per_utt = list(UTT_FILES)
        per_utt += ["segments"] if segmented else ["wav.scp", *RECO_FILES]
        for name in per_utt:
            if name in files and files[name] is not ref:
                _compare_ids(ref, files[name], "utterance", problems)
    if "utt2spk" in files:
        _check_speakers(files, spk_sort, problems)
    if segmented:
        _check_recordings(files, problems)
    if check_audio and "wav.scp" in files:
        _check_audio(files, pipes_allowed(allow_pipes), problems)
    order = {name: i for i, name in enumerate(FORMATS)}
    return sorted(problems, key=lambda p: (order.get(p.path.name, -1), p.line or 0))


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)

