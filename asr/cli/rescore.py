"""``asr rescore``: decode a data directory by n-best rescoring across systems (asr.rescore),
with a weight sweep on dev, and score it when it has references."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from asr.cli.common import add_verbosity
from asr.cli.decode import add_sweep_options, write_outputs
from asr.decode.defaults import read_decoding
from asr.decode.sweep import sweep_grid
from asr.errors import AsrError
from asr.inference import load_system
from asr.lm import read_arpa
from asr.rescore import RescoreWeights, choose, data_dir_candidates
from asr.rescore_model import read_rescore
from asr.rover_model import combination_kind, is_rover, rover_systems
from asr.store import resolve as resolve_model
from asr.utils import atomic_write_text, setup_logging

log = logging.getLogger("asr.decode")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rescore",
        help="decode a data directory by n-best rescoring across several systems",
        description="Every --model searches the data with its own decoder (its decoding.yaml) "
        "for an n-best list; each hypothesis of their union is scored by every model (its CTC "
        "log-likelihood: phone models spell words through their lexicon) and the LM: mean of "
        "the models + LM weight x LM log-probability + word score x words. Writes OUT/text, "
        "OUT/candidates.json, and with references OUT/wer, OUT/per_spk, OUT/score.json "
        "(`asr models rescore --from` reads its weights). Several --lm-weight / --word-score "
        "values make a sweep, as in asr decode: each pair is scored into wer_<lmwt>_<wip> (on "
        "--tune-data when given, into OUT/tune/), and the data is decoded with the best.",
    )
    p.add_argument("--model", action="append", required=True,
                   help="a system: model directory or store name, once per system (two or "
                   "more), or once with a model made by `asr models rescore`")
    p.add_argument("--data", required=True, help="data directory (wav.scp, optional text)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    p.add_argument("--max-bad-utts", type=int, default=0,
                   help="unreadable utterances tolerated (skipped and listed in OUT/bad_utts)")
    p.add_argument("--nbest", type=int, help="hypotheses of each system's search (default: the "
                   "combination model's, else 16)")
    p.add_argument("--lm", help="word ARPA LM (default: the combination model's, else the first "
                   "system's when it is a word ARPA LM)")
    add_sweep_options(p)
    add_verbosity(p)
    p.set_defaults(func=run)


def _systems(args: argparse.Namespace) -> tuple[list[Path], RescoreWeights, Path | None]:
    """The systems' model directories, the default weights and the default LM."""
    paths = [resolve_model(m) for m in args.model]
    for path in paths:
        if is_rover(path) and (len(paths) > 1 or combination_kind(path) != "rescore"):
            raise AsrError(f"{path} is a combination model: give its systems ({', '.join(str(s) for s in rover_systems(path))}) "
                           "as --model each, or one n-best rescoring model alone")
    if len(paths) == 1 and is_rover(paths[0]):
        weights, lm = read_rescore(paths[0])
        return rover_systems(paths[0]), weights, lm
    if len(paths) < 2:
        raise AsrError("asr rescore: give two or more --model systems (or one model made by "
                       "`asr models rescore`)")
    lm = None
    first = read_decoding(paths[0])
    if first is not None and first.lm and first.lm_unit == "word":
        candidate = first.files(paths[0])["lm"]
        if candidate.suffix == ".arpa":
            lm = candidate
    return paths, RescoreWeights(), lm


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    setup_logging(args.verbose, out / "rescore.log")
    paths, defaults, default_lm = _systems(args)
    lm_path = Path(args.lm) if args.lm else default_lm
    lm = read_arpa(lm_path) if lm_path is not None else None
    weights = RescoreWeights(defaults.lm_weight, defaults.word_score, args.nbest or defaults.nbest)
    lm_weights = args.lm_weight or [weights.lm_weight]
    word_scores = args.word_score or [weights.word_score]
    recognizers = [load_system(p, device=args.device, nbest=weights.nbest) for p in paths]
    log.info("n-best rescoring of %d systems (%d-best), LM %s", len(paths), weights.nbest, lm_path)
    sweep_info: dict = {}
    tune = None
    if len(lm_weights) * len(word_scores) > 1:
        tune_data = args.tune_data or args.data
        if not args.tune_data:
            log.warning("weights are tuned on %s itself (no --tune-data): the best WER is "
                        "optimistic, as Kaldi's best_wer is", args.data)
        tune = data_dir_candidates(recognizers, tune_data, lm, args.batch_size, args.max_bad_utts)
        best, _ = sweep_grid(tune.refs, tune.utt2spk, lambda a, b: choose(tune.candidates, a, b),
                             lm_weights, word_scores, out / "tune" if args.tune_data else out,
                             tune_data)
        print(f"best on {tune_data}: {best.report.lines()[0]} {best.path}")
        lm_weights, word_scores = [best.lm_weight], [best.word_score]
        sweep_info = {"lm_weight": best.lm_weight, "word_score": best.word_score,
                      "tuned_on": str(tune_data), "wer": best.report.wer.rate}
    weights = RescoreWeights(lm_weights[0], word_scores[0], weights.nbest)
    # The candidates do not depend on the weights: tuned on the data itself, they are reused.
    if tune is not None and tune.data.path.resolve() == Path(args.data).resolve():
        run_ = tune
    else:
        run_ = data_dir_candidates(recognizers, args.data, lm, args.batch_size, args.max_bad_utts)
    hyps = choose(run_.candidates, weights.lm_weight, weights.word_score)
    ranked = {}
    for utt, c in run_.candidates.items():
        scores = c.scores(weights.lm_weight, weights.word_score)
        ranked[utt] = [{"text": c.texts[i], "score": round(float(scores[i]), 4),
                        "am": [round(float(v), 4) for v in c.am[:, i]], "lm": round(float(c.lm[i]), 4)}
                       for i in sorted(range(len(c.texts)), key=lambda i: -scores[i])]
    atomic_write_text(out / "candidates.json", json.dumps(ranked, indent=1) + "\n")
    rtf = run_.seconds / run_.audio_seconds if run_.audio_seconds else 0.0
    rescore = {"systems": [str(p) for p in paths], "lm": str(lm_path) if lm_path else None,
               "lm_weight": weights.lm_weight, "word_score": weights.word_score,
               "nbest": weights.nbest}
    extra = {"rtf": rtf, "device": str(recognizers[0].device), "rescore": rescore}
    if sweep_info:
        extra["sweep"] = sweep_info
    write_outputs(out, run_.data, hyps, run_.unreadable, extra)
    return 0
