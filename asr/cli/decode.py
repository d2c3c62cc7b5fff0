"""``asr decode``: transcribe a data directory and score it when it has references."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import asr
from asr.cli.common import add_verbosity
from asr.data.tables import write_kaldi_map
from asr.decode import DECODERS, build_decoder
from asr.decode.ctm import write_ctm
from asr.decode.decode_dir import decode_data_dir
from asr.decode.defaults import DecodingDefaults, choose_search
from asr.decode.sweep import compute_posteriors, search, sweep
from asr.errors import AsrError
from asr.lm import read_arpa
from asr.rover_model import is_rover
from asr.score import score
from asr.store import resolve as resolve_model
from asr.utils import atomic_write_text, setup_logging

log = logging.getLogger("asr.decode")


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def add_sweep_options(group) -> None:
    """--lm-weight, --word-score (one value each, or lists to sweep) and --tune-data."""
    group.add_argument("--lm-weight", type=_floats, metavar="A[,A...]",
                       help="weight of the natural-log LM probability (default: the model's, else 0.5)")
    group.add_argument("--word-score", type=_floats, metavar="B[,B...]",
                       help="bonus added per word (default: the model's, else 0); write negative "
                       "lists as --word-score=-1,0,1")
    group.add_argument("--tune-data", help="scored dev data dir on which a weight sweep picks "
                       "the best pair (default: --data itself, as Kaldi's score.sh does)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "decode",
        help="decode a data directory and score it",
        description="Writes OUT/text (hypotheses), OUT/words.json (word times), OUT/ctm "
        "(`utt 1 start dur word conf`), OUT/nbest.json with --nbest > 1; with a reference `text` "
        "in the data dir also OUT/wer (Kaldi lines), OUT/per_spk and OUT/score.json. Several "
        "--lm-weight / --word-score values make a sweep: each pair is scored into "
        "wer_<lmwt>_<wip> (on --tune-data when given, into OUT/tune/), best_wer names the best, "
        "and the data is decoded with it.",
    )
    p.add_argument("--model", required=True, help="model directory or name in the model store")
    p.add_argument("--data", required=True, help="data directory (wav.scp, optional text)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    p.add_argument("--max-bad-utts", type=int, default=0,
                   help="utterances with missing, corrupt or unreadable audio tolerated (skipped, "
                   "logged and listed in OUT/bad_utts) before failing; -1: no limit (default 0)")
    g = p.add_argument_group("search")
    g.add_argument("--decoder", choices=list(DECODERS),
                   help="default: the model's own search (its decoding.yaml, `asr models list`), "
                   "else greedy. " + "; ".join(f"{k}: {v}" for k, v in DECODERS.items()))
    g.add_argument("--beam-size", type=int, help="beams kept per frame (default: the model's, else 16)")
    g.add_argument("--nbest", type=int, default=1, help="hypotheses kept per utterance")
    g.add_argument("--lm", help="n-gram LM: ARPA for beam; ARPA or KenLM binary for lexicon")
    g.add_argument("--lm-unit", choices=("word", "char"),
                   help="unit of --lm for the beam decoder (asr lm build --unit)")
    g.add_argument("--lexicon", help="word spellings for --decoder lexicon (asr lm lexicon)")
    add_sweep_options(g)
    g.add_argument("--token-min-logp", type=float, default=-5.0,
                   help="beam: tokens below this log-posterior in a frame do not extend prefixes")
    g.add_argument("--beam-threshold", type=float, default=10.0,
                   help="drop beams this far (natural log) below the best")
    add_verbosity(p)
    p.set_defaults(func=run)


def _search(args: argparse.Namespace, recognizer) -> DecodingDefaults:
    """The model's decoding.yaml completed by the options, and the options' lists filled in
    (asr.decode.defaults.choose_search)."""
    chosen = choose_search(recognizer.loaded.path, recognizer.decoding, decoder=args.decoder,
                           lm=args.lm, lexicon=args.lexicon, beam_size=args.beam_size,
                           lm_unit=args.lm_unit)
    args.lm_weight = args.lm_weight or [chosen.lm_weight]
    args.word_score = args.word_score or [chosen.word_score]
    return chosen


def _decoder_factory(args: argparse.Namespace, chosen: DecodingDefaults, tokenizer):
    """(lm_weight, word_score) -> decoder; the LM file is read once for the whole sweep."""
    lm = chosen.lm
    if chosen.decoder == "beam" and lm is not None:
        lm = read_arpa(lm)

    def make(lm_weight: float, word_score: float):
        return build_decoder(
            chosen.decoder, tokenizer, beam_size=chosen.beam_size, nbest=args.nbest, lm=lm,
            lm_unit=chosen.lm_unit, lexicon=chosen.lexicon, lm_weight=lm_weight,
            word_score=word_score, token_min_logp=args.token_min_logp,
            beam_threshold=args.beam_threshold)

    return make


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except OSError as exc:
        # Disk full or an unwritable --out: every output is written atomically, so files
        # already there are intact.
        raise AsrError(f"{exc.filename or args.out}: {exc.strerror or exc}; free disk space or "
                       "make the output directory writable, then run again") from None


def _run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    setup_logging(args.verbose, out / "decode.log")
    model_path = resolve_model(args.model)
    if is_rover(model_path):
        raise AsrError(f"{model_path} is a ROVER model: decode each of its systems ({model_path}, "
                       f"{model_path / 'system-2'}, ...) and combine their text files with "
                       "`asr combine`, or transcribe with it")
    recognizer = asr.load_model(model_path, device=args.device, model_decoder=False)
    chosen = _search(args, recognizer)
    if chosen.decoder != "greedy":
        log.info("search: %s", dataclasses.replace(chosen, tuned_on=None).describe())
    args.decoder = chosen.decoder
    make = _decoder_factory(args, chosen, recognizer.tokenizer)
    grid = [(a, b) for a in args.lm_weight for b in args.word_score]
    if len(grid) > 1 and args.decoder in ("greedy", "cuda"):
        raise AsrError(f"--decoder {args.decoder} has no LM weight or word score to sweep; give "
                       "one value each, or use --decoder beam or lexicon")
    if args.nbest > 1 and args.decoder == "greedy":
        raise AsrError("--nbest needs a beam search: add --decoder beam (or lexicon, cuda)")
    sweep_info: dict = {}
    if len(grid) > 1:
        tune_dir = out / "tune" if args.tune_data else out
        tune_data = args.tune_data or args.data
        if not args.tune_data:
            log.warning("weights are tuned on %s itself (no --tune-data): the best WER is "
                        "optimistic, as Kaldi's best_wer is", args.data)
        posteriors = compute_posteriors(recognizer, tune_data, args.batch_size, args.max_bad_utts)
        best, _ = sweep(recognizer, posteriors, make, args.lm_weight, args.word_score, tune_dir)
        print(f"best on {tune_data}: {best.report.lines()[0]} {best.path}")
        grid = [(best.lm_weight, best.word_score)]
        sweep_info = {"lm_weight": best.lm_weight, "word_score": best.word_score,
                      "tuned_on": str(tune_data), "wer": best.report.wer.rate}
    decoder = make(*grid[0])
    if args.nbest > 1:
        posteriors = compute_posteriors(recognizer, args.data, args.batch_size, args.max_bad_utts)
        results, elapsed = search(recognizer, posteriors, decoder)
        data, bad = posteriors.data, posteriors.unreadable
        hyps = {u: r.text for u, r in results.items()}
        words = {u: [w.__dict__ for w in r.words] for u, r in results.items()}
        audio = posteriors.audio_seconds
        rtf = (elapsed + posteriors.forward_seconds) / audio if audio else 0.0
        nbest = {u: [a.__dict__ for a in r.alternatives] for u, r in sorted(results.items())}
        atomic_write_text(out / "nbest.json", json.dumps(nbest, indent=1) + "\n")
    else:
        run_ = decode_data_dir(recognizer, args.data, args.batch_size, args.max_bad_utts,
                               decoder="greedy" if args.decoder == "greedy" else decoder)
        data, hyps, bad, rtf, words = run_.data, run_.hyps, run_.unreadable, run_.rtf, run_.words
    extra = {"rtf": rtf, "device": str(recognizer.device)}
    if args.decoder != "greedy":
        extra |= {"decoder": chosen.decoder, "beam_size": chosen.beam_size, "lm": chosen.lm,
                  "lm_unit": chosen.lm_unit, "lexicon": chosen.lexicon,
                  "lm_weight": grid[0][0], "word_score": grid[0][1]}
    if sweep_info:
        extra["sweep"] = sweep_info
    write_outputs(out, data, hyps, bad, extra)
    atomic_write_text(out / "words.json", json.dumps(words, indent=1) + "\n")
    write_ctm(out / "ctm", words)
    return 0


def write_outputs(out: Path, data, hyps: dict[str, str], bad: list[str], extra: dict) -> None:
    """OUT/text and OUT/bad_utts; with references in ``data`` also OUT/wer, OUT/per_spk and
    OUT/score.json (the report plus ``extra``), the report printed."""
    if bad:
        atomic_write_text(out / "bad_utts", "".join(f"{u}\n" for u in bad))
    else:
        (out / "bad_utts").unlink(missing_ok=True)  # a list from an earlier run is stale now
    write_kaldi_map(out / "text", hyps)
    refs = data.refs()
    if refs:
        report = score(refs, hyps, data.utt2spk)
        lines = report.lines()
        atomic_write_text(out / "wer", "\n".join(lines) + "\n")
        atomic_write_text(out / "per_spk", report.speaker_table() + "\n")
        summary = report.to_dict() | {"unreadable": bad} | extra
        atomic_write_text(out / "score.json", json.dumps(summary, indent=2) + "\n")
        print("\n".join(lines))
