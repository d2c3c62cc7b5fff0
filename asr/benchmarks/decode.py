"""Decoder speed and accuracy: utterances/s, real-time factor and WER of each decoder on one
test set, with pyctcdecode at the same beam widths as the baseline.

The acoustic model runs once; every decoder then searches the same posteriors, so the figures
compare searches only (its forward pass is reported on its own line). Each search is timed
best-of ``--repeat``; ours gets all utterances in batches of ``--search-batch``, pyctcdecode
one utterance at a time (its own API), both in this one process. Both prune alike: tokens
below log-posterior -5 do not extend prefixes and beams 10 below the best are dropped
(pyctcdecode's defaults); the ratio compares them without LM (pyctcdecode's LM needs the kenlm
Python module). GPU rows need CUDA; without it they read "n/a (no CUDA)".

``--data`` is a scored data directory (e.g. the digits recipe's ``data/test``); ``--model``
defaults to the model ``transcribe`` would use. The LM and lexicon rows of a character model
need ``--train-text`` (a 3-gram and the word list are built from it) or ``--lm`` and
``--lexicon``; without them the table has no such rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

log = logging.getLogger("asr.benchmark")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model",
                        help="model directory or name (default: $ASR_MODEL, else the default "
                        "installed model, as for transcribe)")
    parser.add_argument("--data", required=True,
                        help="scored data directory, e.g. recipes/digits/data/test")
    parser.add_argument("--train-text",
                        help="Kaldi text the LM and lexicon are built from when --lm/--lexicon "
                        "are not given, e.g. recipes/digits/data/train/text (default: none, so "
                        "no LM or lexicon rows for a character model)")
    parser.add_argument("--lm", help="word ARPA LM (default: a 3-gram from --train-text)")
    parser.add_argument("--lexicon", help="lexicon (default: the words of --train-text)")
    parser.add_argument("--beam-sizes", default="16,64", help="comma-separated (default 16,64)")
    parser.add_argument("--lm-weight", type=float, default=0.5)
    parser.add_argument("--word-score", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    parser.add_argument("--search-batch", type=int, default=512,
                        help="utterances per call of our searches (default 512)")
    parser.add_argument("--max-utts", type=int, default=0, help="first N utterances (0: all)")
    parser.add_argument("--device", default="auto", help="device of the forward pass")
    parser.add_argument("--no-pyctcdecode", action="store_true", help="skip the baseline")
    parser.add_argument("--json", help="also write the figures to this JSON file")


def _batches(log_probs: list, size: int):
    import torch

    for i in range(0, len(log_probs), size):
        parts = log_probs[i : i + size]
        lengths = torch.tensor([p.shape[0] for p in parts])
        batch = torch.zeros(len(parts), int(lengths.max()), parts[0].shape[1])
        for j, p in enumerate(parts):
            batch[j, : p.shape[0]] = p
        yield batch, lengths


def _time(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _pyctcdecode(tokens: list[str]):
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        return None
    labels = ["" if t == "<blank>" else " " if t == "<space>" else "\u2047" if t == "<unk>" else t
              for t in tokens]
    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    return build_ctcdecoder(labels)


def run(args: argparse.Namespace) -> int:
    import torch

    import asr
    from asr.decode import build_decoder
    from asr.decode.cuda import cuda_usable
    from asr.decode.sweep import compute_posteriors
    from asr.errors import AsrError
    from asr.lm import build_lm
    from asr.scoring import score
    from asr.store import resolve
    from asr.utils import atomic_write_text, setup_logging

    setup_logging(getattr(args, "verbose", False))
    beams = [int(b) for b in args.beam_sizes.split(",") if b.strip()]
    model_path = resolve(args.model)
    recognizer = asr.load_model(model_path, device=args.device)
    tokenizer = recognizer.tokenizer
    post = compute_posteriors(recognizer, args.data, args.batch_size)
    refs_all = post.refs
    if not refs_all:
        raise AsrError(f"{args.data}: no reference `text`; the benchmark needs a scored set")
    ids = sorted(post.log_probs, key=lambda u: post.log_probs[u].shape[0])
    if args.max_utts > 0:
        ids = ids[: args.max_utts]
    lps = [post.log_probs[u] for u in ids]
    refs = {u: refs_all[u] for u in ids}
    audio = sum(post.durations[u] for u in ids)
    utt2spk = post.utt2spk

    tmp = tempfile.TemporaryDirectory(prefix="bench-decode.")
    lm, lexicon = args.lm, args.lexicon
    if tokenizer.unit == "char" and (lm is None or lexicon is None) and args.train_text:
        if not Path(args.train_text).is_file():
            raise AsrError(f"{args.train_text}: not found; give --lm and --lexicon, or --train-text")
        if lm is None:
            lm = str(build_lm([args.train_text], 3, Path(tmp.name) / "lm.arpa", kaldi=True))
        if lexicon is None:
            from asr.decode.lexicon import write_lexicon
            from asr.lm import read_sentences

            words = {w for s in read_sentences([args.train_text], kaldi=True) for w in s}
            lexicon = str(write_lexicon(Path(tmp.name) / "lexicon.txt", words))

    rows: list[dict] = []

    def record(name: str, beam: int | None, with_lm: bool, device: str, seconds: float | None,
               texts: list[str] | None) -> dict:
        row = {"decoder": name, "beam": beam, "lm": with_lm, "device": device}
        if seconds is not None and texts is not None:
            report = score(refs, dict(zip(ids, texts, strict=True)), utt2spk)
            row |= {"seconds": seconds, "utts_per_s": len(ids) / seconds, "rtf": seconds / audio,
                    "wer": report.wer.rate, "wer_line": report.lines()[0]}
        rows.append(row)
        return row

    def ours(decoder) -> tuple[float, list[str]]:
        def go():
            texts = []
            for batch, lengths in _batches(lps, args.search_batch):
                for hyps in decoder.decode(batch, lengths):
                    h = hyps[0]
                    texts.append(" ".join(h.words) if h.words is not None else tokenizer.decode(h.tokens))
            return texts
        return _time(go, args.repeat)

    def make(name: str, beam: int = 16, with_lm: bool = False):
        return build_decoder(name, tokenizer, beam_size=beam, lm=lm if with_lm else None,
                             lexicon=lexicon if name == "lexicon" else None,
                             lm_weight=args.lm_weight, word_score=args.word_score)

    arrays = [lp.numpy() for lp in lps]
    record("greedy", None, False, "cpu", *ours(make("greedy")))
    baseline = None if args.no_pyctcdecode or tokenizer.unit != "char" else _pyctcdecode(tokenizer.tokens)
    for beam in beams:
        record("beam (ours)", beam, False, "cpu", *ours(make("beam", beam)))
        if baseline is not None:
            seconds, texts = _time(lambda b=beam: [
                " ".join(baseline.decode(a, beam_width=b, beam_prune_logp=-10.0,
                                         token_min_logp=-5.0).split()) for a in arrays], args.repeat)
            record("pyctcdecode", beam, False, "cpu", seconds, texts)
        if lm is not None:
            record("beam (ours)", beam, True, "cpu", *ours(make("beam", beam, True)))
        if lexicon is not None:
            record("lexicon (flashlight)", beam, lm is not None, "cpu",
                   *ours(make("lexicon", beam, lm is not None)))
    gpu = cuda_usable()
    if gpu:
        greedy = make("greedy")
        on_gpu = [(b.cuda(), n.cuda()) for b, n in _batches(lps, args.search_batch)]
        seconds, texts = _time(lambda: [tokenizer.decode(h[0].tokens) for b, n in on_gpu
                                        for h in greedy.decode(b, n)], args.repeat)
        record("greedy", None, False, "cuda", seconds, texts)
    else:
        record("greedy", None, False, "n/a (no CUDA)", None, None)
    for beam in beams:
        if gpu:
            dec = make("cuda", beam)
            seconds, texts = _time(lambda d=dec: [tokenizer.decode(h[0].tokens)
                                                  for b, n in _batches(lps, args.search_batch)
                                                  for h in d.decode(b.cuda(), n)], args.repeat)
            record("cuda (torchaudio)", beam, False, "cuda", seconds, texts)
        else:
            record("cuda (torchaudio)", beam, False, "n/a (no CUDA)", None, None)
    tmp.cleanup()

    base = {r["beam"]: r["utts_per_s"] for r in rows if r["decoder"] == "pyctcdecode"}
    for r in rows:  # the same search: ours without LM against pyctcdecode without LM
        if "utts_per_s" in r and r["beam"] in base and r["decoder"] == "beam (ours)" and not r["lm"]:
            r["x_pyctcdecode"] = r["utts_per_s"] / base[r["beam"]]

    forward_rtf = post.forward_seconds / post.audio_seconds if post.audio_seconds else 0.0
    header = [
        f"# decoders on {args.data}: {len(ids)} utterances, {audio:.0f} s of audio, "
        f"model {model_path}",
        f"# forward pass (not in the rows): {post.forward_seconds:.1f} s on {recognizer.device}, "
        f"RTF {forward_rtf:.4f}; search on the CPU, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        f"# LM: {_lm_source(args, lm)}; best of {args.repeat} runs",
    ]
    table = ["| decoder | beam | LM | device | utt/s | RTF (search) | WER % | x pyctcdecode |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "utts_per_s" not in r:
            table.append(f"| {r['decoder']} | {r['beam'] or '-'} | {'yes' if r['lm'] else 'no'} | "
                         f"{r['device']} | n/a | n/a | n/a | n/a |")
            continue
        ratio = f"{r['x_pyctcdecode']:.2f}" if "x_pyctcdecode" in r else "-"
        table.append(f"| {r['decoder']} | {r['beam'] or '-'} | {'yes' if r['lm'] else 'no'} | "
                     f"{r['device']} | {r['utts_per_s']:.0f} | {r['rtf']:.5f} | "
                     f"{r['wer']:.2f} | {ratio} |")
    print("\n".join(header + table))
    if args.json:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        atomic_write_text(args.json, json.dumps({"date": stamp, "data": args.data, "model": str(model_path),
                                                 "utterances": len(ids), "audio_seconds": audio,
                                                 "forward_seconds": post.forward_seconds,
                                                 "rows": rows}, indent=2) + "\n")
    return 0


def _lm_source(args: argparse.Namespace, lm: str | None) -> str:
    """Where the LM rows' LM came from, for the table's header."""
    from asr.lm.kenlm import have_kenlm

    if lm is None:
        return "none (give --train-text, or --lm and --lexicon, for the LM and lexicon rows)"
    source = args.lm or f"3-gram from {args.train_text}"
    built = "" if args.lm else f"; {'lmplz' if have_kenlm() else 'built-in estimator'}"
    return f"{source} (weight {args.lm_weight}, word score {args.word_score}{built})"
