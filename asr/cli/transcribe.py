"""``transcribe FILE...``: speech to text with a trained model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asr.cli.common import EXIT_ERROR, EXIT_OK, add_verbosity, run_command
from asr.errors import AsrError
from asr.store import store_dir
from asr.utils import setup_logging
from asr.writers import FORMATS, format_result, write_result

log = logging.getLogger("transcribe")

EPILOG = f"""\
model resolution: --model (a directory or a name in the store), else $ASR_MODEL, else the
store's default model. The store is $ASR_MODEL_DIR, else ~/.cache/asr/models (here: {store_dir()}).
`asr models list` shows what is installed; `make demo` installs the 'digits' model.

exit codes: 0 every file transcribed; 1 a file or the model could not be used (the other
files are still transcribed); 2 bad command line; 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="transcribe",
        description="Transcribe audio files (WAV, FLAC, OGG, MP3, SPHERE, ...) to text.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--model", help="model directory or name in the model store")
    p.add_argument("--device", default="auto", help="auto (CUDA when usable), cpu, cuda, cuda:N")
    p.add_argument("--output-format", "-f", default="txt", choices=FORMATS, help="output format (default txt)")
    p.add_argument("--output-dir", "-o", help="write <stem>.<format> files here instead of printing")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first file that fails")
    add_verbosity(p)
    return p


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    import asr

    recognizer = asr.load_model(args.model, device=args.device)
    failures = []
    for path in args.files:
        try:
            result = recognizer.transcribe(path)
        except AsrError as exc:
            print(f"transcribe: error: {exc}", file=sys.stderr)
            failures.append(path)
            if args.fail_fast:
                break
            continue
        if args.output_dir:
            written = write_result(result, path, args.output_dir, args.output_format)
            log.info("%s -> %s", path, written)
        elif args.output_format == "txt" and len(args.files) > 1:
            sys.stdout.write(f"{Path(path).name}: {result.text}\n")
        else:
            sys.stdout.write(format_result(result, args.output_format))
        sys.stdout.flush()
    if failures:
        done = len(args.files) - len(failures)
        print(f"transcribe: {done} of {len(args.files)} file(s) transcribed; failed: {', '.join(failures)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(run, args, "transcribe")


if __name__ == "__main__":
    sys.exit(main())
