"""``asr models``: list and install models in the model store, and give a model its decoder."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from pathlib import Path

from asr import store
from asr.cli.common import add_verbosity
from asr.decode.base import DecoderError
from asr.decode.defaults import DecodingDefaults, attach_decoding, read_decoding
from asr.ensemble import is_ensemble, make_ensemble, member_files
from asr.errors import AsrError
from asr.modeldir import load_model_dir
from asr.rescore import RescoreWeights
from asr.rescore_model import read_rescore
from asr.rover_model import combination_kind, is_rover, make_rover, rover_systems


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list or install models in the model store",
                              description=f"The model store is $ASR_MODEL_DIR, else ~/.cache/asr/models (now {store.store_dir()}).")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    ls = sub.add_parser("list", help="list installed models (* marks the default)")
    add_verbosity(ls)
    ls.set_defaults(func=run_list)
    inst = sub.add_parser("install", help="copy a model directory into the store")
    inst.add_argument("model_dir", help="a model directory, e.g. exp/NAME/final")
    inst.add_argument("--name", required=True, help="name to install it under")
    inst.add_argument("--default", action="store_true", help="make it the default model")
    add_verbosity(inst)
    inst.set_defaults(func=run_install)
    _add_combination(
        sub, "ensemble", make_ensemble, "mean posterior", "ensemble",
        help="combine models of the same units into one model directory",
        description="Writes a model directory whose models all run on the input and whose "
        "frame posteriors are averaged (asr.ensemble). The models need the same tokens.txt and "
        "output frame period; they may differ in features, CMVN, size and seed. Give it a "
        "decoder afterwards with `asr models set-decoder` (tuned on dev with `asr decode`).",
        models_help="two or more model directories or store names")
    _add_combination(
        sub, "rover", make_rover, "ROVER", "ROVER model",
        help="combine complete systems (each with its own decoder) by word voting",
        description="Writes a model directory that runs every system on the input, each with "
        "its own units and search (its decoding.yaml: set it first with `asr models "
        "set-decoder`), and keeps the words most of them chose (ROVER, asr.rover); a tie goes "
        "to the system listed first, so list them best first, as measured on dev. Three or "
        "more systems. `transcribe --model` runs it; `asr decode` decodes one system at a "
        "time (combine their text files with `asr combine`).",
        models_help="three or more model directories or store names, best first")
    res = sub.add_parser(
        "rescore", help="combine complete systems by n-best rescoring",
        description="Writes a model directory that runs every system on the input, each with "
        "its own units and search (its decoding.yaml), takes each one's n-best list and picks "
        "the hypothesis of their union with the best mean CTC log-likelihood over all systems "
        "plus LM weight x LM log-probability plus word score x words (asr.rescore). Two or "
        "more systems. --from takes the score.json of an `asr rescore` run (its LM, weights "
        "and n-best size, as tuned there on dev); options override it. `transcribe --model` "
        "runs it; `asr rescore --model DIR` decodes a data directory with it.")
    res.add_argument("models", nargs="+", help="two or more model directories or store names")
    res.add_argument("--out", required=True, help="the new (empty) model directory")
    res.add_argument("--from", dest="source", metavar="SCORE_JSON",
                     help="score.json of an asr rescore run")
    res.add_argument("--lm", metavar="ARPA", help="word LM of the rescoring (copied in)")
    res.add_argument("--lm-weight", type=float)
    res.add_argument("--word-score", type=float)
    res.add_argument("--nbest", type=int, help="hypotheses of each system's search (default 16)")
    add_verbosity(res)
    res.set_defaults(func=run_rescore)
    dec = sub.add_parser(
        "set-decoder", help="store a decoder (lexicon, LM, weights) in a model directory",
        description="Copies the lexicon and LM into the model directory and writes its "
        "decoding.yaml, which `transcribe` and `asr decode` then use unless their options say "
        "otherwise. --from takes the score.json of an `asr decode` run (its decoder, files and "
        "the weights its sweep chose on --tune-data); options override it. The decoder is built "
        "once here, so a lexicon or LM that does not fit the model is refused now.")
    dec.add_argument("model", help="model directory or name in the model store")
    dec.add_argument("--from", dest="source", metavar="SCORE_JSON",
                     help="score.json of an asr decode run, e.g. exp/phone/decode_lexicon_lm_test/score.json")
    dec.add_argument("--decoder", choices=("greedy", "beam", "lexicon"))
    dec.add_argument("--lexicon", metavar="PATH")
    dec.add_argument("--lm", metavar="PATH", help="ARPA (beam, lexicon) or KenLM binary (lexicon)")
    dec.add_argument("--lm-unit", choices=("word", "char"))
    dec.add_argument("--lm-weight", type=float)
    dec.add_argument("--word-score", type=float)
    dec.add_argument("--beam-size", type=int)
    dec.add_argument("--tuned-on", metavar="DATA", help="where the weights were tuned (shown by list)")
    dec.add_argument("--tuned-wer", type=float, metavar="WER", help="the WER there, in %%")
    add_verbosity(dec)
    dec.set_defaults(func=run_set_decoder)


def run_list(args: argparse.Namespace) -> int:
    default = store.default_model()
    names = store.list_models()
    if not names:
        print(f"no models installed in {store.store_dir()}")
    for name in names:
        path = store.store_dir() / name
        try:
            decoding = read_decoding(path)
            search = decoding.describe() if decoding is not None else "greedy"
        except DecoderError as exc:
            search = f"broken decoder: {exc}"
        if is_ensemble(path):
            try:
                search += f"; ensemble of {len(member_files(path))} models"
            except AsrError as exc:
                search += f"; broken ensemble: {exc}"
        if is_rover(path):
            try:
                count = len(rover_systems(path))
                if combination_kind(path) == "rescore":
                    weights, lm = read_rescore(path)
                    search = (f"n-best rescoring of {count} systems ({weights.nbest}-best"
                              f"{' + ' + lm.name if lm else ''}, LM weight {weights.lm_weight:g}, "
                              f"word score {weights.word_score:g}); system 1: {search}")
                else:
                    search = f"ROVER of {count} systems; system 1: {search}"
            except AsrError as exc:
                search += f"; broken combination model: {exc}"
        print(f"{'*' if name == default else ' '} {name}\t{path}\t{search}")
    return 0


def run_install(args: argparse.Namespace) -> int:
    target = store.install(args.model_dir, args.name, make_default=args.default)
    print(f"installed {args.model_dir} as '{args.name}' in {target}{' (default)' if args.default else ''}")
    return 0


def _add_combination(sub, name: str, make, combine: str, kind: str, *, help: str, description: str,
                     models_help: str) -> None:
    """``asr models NAME MODEL... --out DIR``: ``make(DIR, model dirs)`` writes the combination."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("models", nargs="+", help=models_help)
    p.add_argument("--out", required=True, help=f"the new (empty) {kind} directory")
    add_verbosity(p)
    p.set_defaults(func=functools.partial(_run_combination, make=make, combine=combine))


def _run_combination(args: argparse.Namespace, make, combine: str) -> int:
    out = make(args.out, [store.resolve(m) for m in args.models])
    print(f"{out}: {combine} of {len(args.models)} models")
    return 0


def run_rescore(args: argparse.Namespace) -> int:
    options: dict = {}
    lm = None
    if args.source:
        summary = _read_score(Path(args.source))
        if "rescore" not in summary:
            raise AsrError(f"{args.source}: not a score.json of asr rescore")
        options = {k: summary["rescore"][k] for k in ("lm_weight", "word_score", "nbest")}
        lm = summary["rescore"].get("lm")
    given = {"lm_weight": args.lm_weight, "word_score": args.word_score, "nbest": args.nbest}
    options |= {k: v for k, v in given.items() if v is not None}
    weights = RescoreWeights(**options)  # defaults for what neither gives; refuses a bad nbest
    lm = args.lm or lm
    out = make_rover(args.out, [store.resolve(m) for m in args.models], combine="rescore",
                     options=dataclasses.asdict(weights), lm=lm)
    print(f"{out}: n-best rescoring of {len(args.models)} models ({weights.nbest}-best"
          f"{', ' + str(lm) if lm else ''}, LM weight {weights.lm_weight:g}, word score "
          f"{weights.word_score:g})")
    return 0


def _read_score(path: Path) -> dict:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AsrError(f"{path}: not a readable score.json ({exc})") from None
    if not isinstance(summary, dict):
        raise AsrError(f"{path}: not a score.json")
    return summary


SEARCH_KEYS = ("decoder", "lexicon", "lm", "lm_unit", "lm_weight", "word_score", "beam_size")


def _from_score(path: Path) -> dict:
    """The search of an ``asr decode`` score.json as decoding options."""
    summary = _read_score(path)
    values = {k: summary[k] for k in SEARCH_KEYS if summary.get(k) is not None}
    values.setdefault("decoder", "greedy")
    sweep = summary.get("sweep") or {}
    if sweep.get("tuned_on"):
        values["tuned_on"] = sweep["tuned_on"]
        if sweep.get("wer") is not None:
            values["tuned_wer"] = round(float(sweep["wer"]), 2)
    return values


def run_set_decoder(args: argparse.Namespace) -> int:
    model_dir = store.resolve(args.model)
    values = _from_score(Path(args.source)) if args.source else {}
    given = {k: getattr(args, k) for k in (*SEARCH_KEYS, "tuned_on", "tuned_wer")}
    values |= {k: v for k, v in given.items() if v is not None}
    lexicon, lm = values.pop("lexicon", None), values.pop("lm", None)
    if values.get("decoder", "greedy") == "greedy" and (lexicon or lm):
        raise AsrError("--lexicon and --lm need --decoder beam or lexicon")
    fields = {f.name for f in dataclasses.fields(DecodingDefaults)}
    decoding = DecodingDefaults(**{k: v for k, v in values.items() if k in fields})
    written = attach_decoding(model_dir, decoding, lexicon, lm, load_model_dir(model_dir).tokenizer)
    print(f"{model_dir}: {written.describe()}")
    return 0
