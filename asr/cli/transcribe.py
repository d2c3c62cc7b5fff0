"""``transcribe FILE...``: speech to text with a trained model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import torch

import asr
from asr.audio import header_duration
from asr.cli.common import EXIT_ERROR, EXIT_OK, run_command
from asr.decode.defaults import build_default_decoder, choose_search
from asr.decode.registry import DECODERS
from asr.errors import AsrError
from asr.store import store_dir
from asr.utils import setup_logging
from asr.writers import ALL, FORMATS, format_result, output_name, write_result

log = logging.getLogger("transcribe")

EPILOG = f"""\
model resolution: --model (a model directory, or a name in the model store), else $ASR_MODEL,
else the store's default model. The store is $ASR_MODEL_DIR, else ~/.cache/asr/models (here:
{store_dir()}). `asr models list` shows what is installed; `make demo` (or a recipe's last
stage) installs the 'digits' model and makes it the default.

input: any file asr.audio reads (WAV, FLAC, OGG, Opus, MP3, SPHERE; m4a/mp4/webm through
ffmpeg), or - for standard input. Files are batched by length; recordings longer than
--chunk-length are transcribed in overlapping chunks, so memory stays bounded.

output: text to stdout, one line per file (prefixed with the file name when there are
several); with --output-dir, <dir>/<name>.<format> per file (-f all: every format; without
--output-dir it writes to the current directory). json holds segments and word times.

exit codes: 0 every file transcribed; 1 a file, the model or the decoder could not be used
(the other files are still transcribed and written, then a summary is printed; --fail-fast
stops at the first); 2 bad command line; 130 interrupted.
"""


def _device(value: str) -> str:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise argparse.ArgumentTypeError(f"unknown device {value!r}: use auto, cpu, cuda or cuda:N")


def _positive(kind: type, minimum: float) -> Callable[[str], float]:
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="transcribe",
        description="Transcribe audio files to text with a BiLSTM-CTC model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files; - reads standard input")
    p.add_argument("--model", "-m", metavar="NAME|DIR", help="model directory or name in the model store "
                   "(default: $ASR_MODEL, else the store's default model)")
    p.add_argument("--device", default="auto", type=_device, metavar="auto|cpu|cuda",
                   help="auto (CUDA when usable, default), cpu, cuda or cuda:N")
    p.add_argument("--decoder", choices=list(DECODERS),
                   help="search (default: the model's own, as `asr models list` shows it, else "
                   "greedy; beam and lexicon take --lm)")
    p.add_argument("--lm", metavar="PATH", help="n-gram LM: ARPA for --decoder beam; ARPA or KenLM binary for lexicon")
    p.add_argument("--lexicon", metavar="PATH", help="lexicon file for --decoder lexicon (asr lm lexicon writes one)")
    p.add_argument("--language-model-weight", "--lm-weight", dest="lm_weight", type=float,
                   metavar="A", help="LM weight (natural-log scale; default: the model's, else 0.5)")
    p.add_argument("--word-score", type=float, metavar="B",
                   help="score added per word (default: the model's, else 0)")
    p.add_argument("--beam-size", type=_positive(int, 1), metavar="N",
                   help="beam width (default: the model's, else 16)")
    p.add_argument("--output-format", "-f", default="txt", choices=[*FORMATS, ALL],
                   help="txt (default), json, srt, vtt, tsv, ctm, or all of them")
    p.add_argument("--output-dir", "-o", metavar="DIR", help="write <stem>.<format> files here instead of printing")
    p.add_argument("--batch-size", type=_positive(int, 1), default=8, metavar="N",
                   help="files (or chunks of a long file) per network pass (default 8)")
    p.add_argument("--chunk-length", type=_positive(float, 1.0), default=30.0, metavar="SEC",
                   help="longer recordings are transcribed in chunks of SEC seconds that overlap "
                   "(default 30)")
    p.add_argument("--threads", type=_positive(int, 1), metavar="N",
                   help="CPU threads for the network (default: PyTorch's, one per core); 1 is "
                   "often faster for small models on a busy machine")
    p.add_argument("--word-timestamps", action="store_true",
                   help="srt, vtt and tsv get one cue per word instead of one per segment")
    speakers = p.add_mutually_exclusive_group()
    speakers.add_argument("--one-speaker", action="store_true",
                          help="the files are one speaker's: a model trained with per-speaker "
                          "CMVN normalises them with their pooled statistics instead of each on "
                          "its own (other models: no effect)")
    speakers.add_argument("--speaker-per-dir", action="store_true",
                          help="the files of each directory are one speaker's (AN4's and "
                          "LibriSpeech's layouts): as --one-speaker, directory by directory; "
                          "the results come out directory by directory")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first file that fails")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("--quiet", "-q", action="store_true",
                      help="no progress bar and no summary (errors are still printed)")
    loud.add_argument("--verbose", "-v", action="store_true",
                      help="debug logging; tracebacks on errors")
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Command-line mistakes found before any model is loaded (exit code 2)."""
    if args.files.count("-") > 1:
        parser.error("standard input (-) can be given only once")
    flag = _speaker_flag(args)
    if flag and "-" in args.files:
        parser.error(f"{flag} reads the files twice (statistics, then text): save standard "
                     "input to a file first")
    many = len(args.files) > 1
    if many and args.output_dir is None and args.output_format in ("srt", "vtt", "tsv"):
        parser.error(f"several files as {args.output_format} need --output-dir (one file each)")
    if args.output_dir is not None or args.output_format == ALL:
        seen: dict[str, str] = {}
        for path in args.files:
            stem = output_name(path)
            if stem in seen and seen[stem] != path:
                parser.error(f"{seen[stem]} and {path} would both write {stem}.*; "
                             "transcribe them in separate runs or rename one")
            seen[stem] = path


def _progress_bar(args: argparse.Namespace, total: float | None):
    """A tqdm bar over seconds of audio on a terminal, else None."""
    if args.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="s", unit_scale=True, desc="transcribe", file=sys.stderr,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")


def _total_seconds(files: list[str]) -> float | None:
    total = 0.0
    for path in files:
        seconds = header_duration(path)
        if seconds is None:
            return None
        total += seconds
    return total


def _emit(args: argparse.Namespace, path: str, result) -> None:
    """Print or write one file's transcript."""
    formats = list(FORMATS) if args.output_format == ALL else [args.output_format]
    if args.output_dir is not None or args.output_format == ALL:
        out_dir = args.output_dir or "."
        for fmt in formats:
            try:
                written = write_result(result, path, out_dir, fmt, args.word_timestamps)
            except OSError as exc:
                raise AsrError(f"{Path(out_dir) / output_name(path)}.{fmt}: cannot write "
                               f"({exc.strerror or exc}); check --output-dir") from None
            log.debug("%s -> %s", path, written)
        return
    fmt = formats[0]
    if len(args.files) > 1 and fmt == "txt":
        sys.stdout.write(f"{Path(path).name}: {result.text}\n")
    elif len(args.files) > 1 and fmt == "json":
        sys.stdout.write(json.dumps({"file": path, **result.to_dict()}, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_result(result, fmt, output_name(path), args.word_timestamps))
    sys.stdout.flush()


SEARCH_OPTIONS = ("decoder", "lm", "lexicon", "lm_weight", "word_score", "beam_size")


def _decoder(args: argparse.Namespace, recognizer):
    """None: the model's own search (its decoding.yaml, else greedy); else what the options ask,
    completed from the model's defaults (asr.decode.defaults.choose_search)."""
    if all(getattr(args, name) is None for name in SEARCH_OPTIONS):
        return None
    chosen = choose_search(recognizer.loaded.path, recognizer.decoding, decoder=args.decoder,
                           lm=args.lm, lexicon=args.lexicon, lm_weight=args.lm_weight,
                           word_score=args.word_score, beam_size=args.beam_size)
    if chosen.decoder == "greedy" and (args.lm or args.lexicon):
        raise AsrError("--lm and --lexicon need --decoder beam or lexicon (greedy search "
                       "uses no LM)")
    decoder = build_default_decoder(recognizer.loaded.path, chosen, recognizer.tokenizer)
    return "greedy" if decoder is None else decoder


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    # The model's own decoder is built at load (a missing lexicon fails there) unless --decoder
    # chooses another search.
    recognizer = asr.load_model(args.model, device=args.device, model_decoder=args.decoder is None)
    decoder = _decoder(args, recognizer)
    groups = speaker_groups(args.files, args.speaker_per_dir)
    flag = _speaker_flag(args)
    adapting = bool(flag) and recognizer.uses_speaker_cmvn
    if flag and not adapting:
        log.warning("%s: %s normalises with fixed statistics; it changes nothing", flag,
                    recognizer.loaded.path)
    log.debug("model %s on %s, decoder %s", recognizer.loaded.path, recognizer.device,
              decoder or recognizer.decoder or "greedy")
    bar = None
    if not args.quiet and sys.stderr.isatty():
        total = _total_seconds(args.files)
        if len(args.files) > 1 or total is None or total > args.chunk_length:
            bar = _progress_bar(args, total)
    failures: list[str] = []
    done = 0
    try:
        def results():
            for group in groups:
                if adapting:
                    recognizer.adapt_files(group)
                yield from recognizer.transcribe_files(
                    group, batch_size=args.batch_size, chunk_length=args.chunk_length,
                    decoder=decoder, progress=bar.update if bar is not None else None)

        for path, result in results():
            if not isinstance(result, AsrError):
                try:
                    _emit(args, path, result)
                    done += 1
                    continue
                except AsrError as exc:
                    result = exc
            (bar.write if bar is not None else _stderr)(f"transcribe: error: {result}")
            failures.append(path)
            if args.fail_fast:
                break
    finally:
        if bar is not None:
            bar.close()
    if failures:
        if not args.quiet:
            shown = ", ".join(failures[:5]) + (f", ... ({len(failures) - 5} more)" if len(failures) > 5 else "")
            stopped = " (stopped at the first failure: --fail-fast)" if args.fail_fast else ""
            _stderr(f"transcribe: {done} of {len(args.files)} file(s) transcribed; "
                    f"{len(failures)} failed: {shown}{stopped}")
        return EXIT_ERROR
    return EXIT_OK


def _speaker_flag(args: argparse.Namespace) -> str | None:
    """The option that groups the files by speaker, if one was given."""
    return "--one-speaker" if args.one_speaker else "--speaker-per-dir" if args.speaker_per_dir else None


def speaker_groups(files: list[str], per_dir: bool) -> list[list[str]]:
    """The files as one group, or (``per_dir``) grouped by directory in the order each
    directory first appears, each group in input order."""
    if not per_dir:
        return [list(files)]
    groups: dict[Path, list[str]] = {}
    for path in files:
        groups.setdefault(Path(path).resolve().parent, []).append(path)
    return list(groups.values())


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    return run_command(run, args, "transcribe")


if __name__ == "__main__":
    sys.exit(main())
