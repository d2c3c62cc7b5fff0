"""``asr data validate|fix|subset|combine|split|copy|perturb-speed|get-durations``.

Each action mirrors one of Kaldi's ``utils/`` scripts (thin wrappers with Kaldi's names and
options are in ``tools/``); outputs are written as a whole and checked before the command
returns.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.data.datafiles import DataFiles
from asr.data.wavscp import pipes_allowed
from asr.errors import DataDirError
from asr.utils import setup_logging

log = logging.getLogger("asr.data")

# Each action imports its module when it runs: only actions that read audio load the audio
# libraries (soundfile, soxr), and `asr data --help` loads none of them.


def _allow_pipes(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-pipes", action="store_const", const=True, default=None,
                   help="run commands in wav.scp ('cmd |'); also ASR_ALLOW_PIPES=1")


def _action(actions: argparse._SubParsersAction, name: str, help_text: str, func) -> argparse.ArgumentParser:
    p = actions.add_parser(name, help=help_text, description=help_text)
    add_verbosity(p)
    p.set_defaults(func=func)
    return p


def add_parsers(actions: argparse._SubParsersAction) -> None:
    """Register this module's actions under ``asr data``."""
    p = _action(actions, "validate", "check a data directory; print every problem with file "
                "and line (exit 1 when there are errors)", run_validate)
    p.add_argument("dir")
    p.add_argument("--no-text", action="store_true", help="text may be absent")
    p.add_argument("--no-wav", action="store_true", help="wav.scp may be absent")
    p.add_argument("--require-feats", action="store_true", help="feats.scp must be present")
    p.add_argument("--no-spk-sort", action="store_true",
                   help="utt2spk need not be sorted by speaker as well as by utterance")
    p.add_argument("--no-audio-check", action="store_true",
                   help="do not look at audio files (existence, segment ends)")
    _allow_pipes(p)

    p = _action(actions, "fix", "repair a data directory in place (originals in DIR/.backup) "
                "and say what was dropped, with counts", run_fix)
    p.add_argument("dir")
    p.add_argument("--no-audio-check", action="store_true",
                   help="do not read audio headers (segment ends are not checked)")
    _allow_pipes(p)

    p = _action(actions, "subset", "copy a subset of the utterances to a new directory", run_subset)
    p.add_argument("src")
    p.add_argument("dest")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--first", type=int, metavar="N", help="the first N utterances")
    how.add_argument("--last", type=int, metavar="N", help="the last N utterances")
    how.add_argument("--shortest", type=int, metavar="N", help="the N shortest utterances")
    how.add_argument("--evenly", type=int, metavar="N", help="N utterances spread evenly")
    how.add_argument("--per-spk", type=int, metavar="N", help="the first N of each speaker")
    how.add_argument("--speakers", type=int, metavar="N",
                     help="whole speakers (in order) until at least N utterances")
    how.add_argument("--utt-list", metavar="FILE", help="utterances listed in FILE (first field)")
    how.add_argument("--spk-list", metavar="FILE", help="speakers listed in FILE (first field)")
    _allow_pipes(p)

    p = _action(actions, "combine", "combine data directories into DEST", run_combine)
    p.add_argument("dest")
    p.add_argument("srcs", nargs="+", metavar="src")
    _allow_pipes(p)

    p = _action(actions, "split", "split into DIR/splitN/{1..N} (by speaker unless --per-utt)",
                run_split)
    p.add_argument("dir")
    p.add_argument("parts", type=int, metavar="N")
    p.add_argument("--per-utt", action="store_true",
                   help="split utterances evenly, ignoring speakers (DIR/splitNutt)")

    p = _action(actions, "copy", "copy a data directory, optionally adding prefixes/suffixes to "
                "utterance and speaker ids", run_copy)
    p.add_argument("src")
    p.add_argument("dest")
    for which in ("utt", "spk"):
        for end in ("prefix", "suffix"):
            p.add_argument(f"--{which}-{end}", default="", metavar="STR")

    p = _action(actions, "perturb-speed", "write a speed-perturbed copy (ids prefixed "
                "sp<FACTOR>-), as Kaldi's perturb_data_dir_speed.sh", run_perturb)
    p.add_argument("factor", help="speed factor, e.g. 0.9 or 1.1")
    p.add_argument("src")
    p.add_argument("dest")
    _allow_pipes(p)

    p = _action(actions, "get-durations", "write utt2dur (and reco2dur with segments) from the "
                "audio headers", run_durations)
    p.add_argument("dir")
    _allow_pipes(p)


def _print_problems(problems: list) -> tuple[int, int]:
    errors = sum(p.severity == "error" for p in problems)
    for problem in problems:
        print(problem)
    return errors, len(problems) - errors


def run_validate(args: argparse.Namespace) -> int:
    from asr.data.validate import validate_data_dir

    setup_logging(args.verbose)
    if not Path(args.dir).is_dir():
        raise DataDirError(f"{args.dir}: data directory not found")
    problems = validate_data_dir(
        args.dir,
        require_text=not args.no_text,
        require_wav=not args.no_wav,
        require_feats=args.require_feats,
        spk_sort=not args.no_spk_sort,
        check_audio=not args.no_audio_check,
        allow_pipes=args.allow_pipes,
    )
    errors, warnings = _print_problems(problems)
    if errors:
        print(f"{args.dir}: {errors} error(s), {warnings} warning(s); "
              f"`asr data fix {args.dir}` repairs what can be repaired")
        return 1
    print(f"{args.dir}: valid ({warnings} warning(s))")
    return 0


def run_fix(args: argparse.Namespace) -> int:
    from asr.data.fix import fix_data_dir

    setup_logging(args.verbose)
    report = fix_data_dir(args.dir, check_audio=not args.no_audio_check,
                          allow_pipes=args.allow_pipes)
    for line in report.lines():
        print(line)
    errors, _ = _print_problems(report.remaining)
    if errors:
        print(f"{args.dir}: {errors} problem(s) could not be repaired (see above)")
        return 1
    print(f"{args.dir}: fixed; originals in {Path(args.dir) / '.backup'}")
    return 0


def _finish(data: DataFiles, dest: str) -> int:
    """Write ``data`` to ``dest``, check it, and say what is there."""
    from asr.data.validate import has_errors, validate_data_dir

    for note in data.notes:
        log.warning("%s", note)
    data.write(dest)
    problems = validate_data_dir(dest, require_text="text" in data.files, check_audio=False)
    if has_errors(problems):
        _print_problems(problems)
        raise DataDirError(f"{dest}: written but not valid (see above); check the inputs with "
                           "`asr data validate`")
    speakers = len(set(data.utt2spk.values()))
    print(f"{dest}: {len(data.utt2spk)} utterance(s), {speakers} speaker(s)")
    return 0


def run_subset(args: argparse.Namespace) -> int:
    from asr.data.ops import read_id_list, subset_utterances

    setup_logging(args.verbose)
    data = DataFiles.load(args.src)
    utts = subset_utterances(
        data,
        first=args.first,
        last=args.last,
        shortest=args.shortest,
        evenly=args.evenly,
        per_spk=args.per_spk,
        speakers=args.speakers,
        utt_list=read_id_list(args.utt_list) if args.utt_list else None,
        spk_list=read_id_list(args.spk_list) if args.spk_list else None,
        allow_pipes=pipes_allowed(args.allow_pipes),
    )
    if not utts:
        raise DataDirError(f"{args.src}: the subset is empty; nothing written to {args.dest}")
    return _finish(data.select(utts), args.dest)


def run_combine(args: argparse.Namespace) -> int:
    from asr.data.ops import combine

    setup_logging(args.verbose)
    sources = [DataFiles.load(src) for src in args.srcs]
    return _finish(combine(sources, pipes_allowed(args.allow_pipes)), args.dest)


def run_split(args: argparse.Namespace) -> int:
    from asr.data.split import split_data_dir

    setup_logging(args.verbose)
    parts = split_data_dir(args.dir, args.parts, per_utt=args.per_utt)
    print(f"{args.dir}: split into {len(parts)} part(s) under {parts[0].parent}")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from asr.data.ops import copy_renamed

    setup_logging(args.verbose)
    data = DataFiles.load(args.src)
    renamed = copy_renamed(data, args.utt_prefix, args.utt_suffix, args.spk_prefix,
                           args.spk_suffix)
    return _finish(renamed, args.dest)


def run_perturb(args: argparse.Namespace) -> int:
    from asr.data.perturb import perturb_speed

    setup_logging(args.verbose)
    data = DataFiles.load(args.src)
    return _finish(perturb_speed(data, args.factor, pipes_allowed(args.allow_pipes)), args.dest)


def run_durations(args: argparse.Namespace) -> int:
    from asr.data.durations import get_durations

    setup_logging(args.verbose)
    for path in get_durations(args.dir, pipes_allowed(args.allow_pipes)).values():
        print(f"{path}: written")
    return 0
