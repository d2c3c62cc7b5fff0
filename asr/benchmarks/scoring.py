"""Scoring speed and agreement: ours (sclite's alignment) against jiwer and sclite itself.

Every scorer gets the same utterance pairs: seeded synthetic ones (default: 100,000 pairs of
3-30 words from a 2,000-word vocabulary, about 14 % WER), or Kaldi ``text`` files given with
--ref/--hyp. Times are the best of --repeat runs, in one process (numba's compiled code is
loaded before timing). Agreement compares the total substitutions, deletions and insertions
with sclite's (run with ``-s``, case-sensitive, as ``--normalize none`` is).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pairs", type=int, default=100_000,
                        help="synthetic utterance pairs (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic pairs")
    parser.add_argument("--ref", help="score this Kaldi text file instead of synthetic pairs")
    parser.add_argument("--hyp", help="hypotheses for --ref")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs (default 3)")
    parser.add_argument("--no-sclite", action="store_true", help="skip the sclite row")
    parser.add_argument("--json", help="also write the figures to this JSON file")


def synthetic_pairs(pairs: int, seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    """``pairs`` reference/hypothesis texts with deletions (5 %), substitutions (7 %) and
    insertions (2 %) of words; keyed ``spkNN-uttNNNNNN``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(2, 9, size=2000)]
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    lengths = rng.integers(3, 31, size=pairs)
    words = rng.integers(0, len(vocab), size=int(lengths.sum()))
    draws = rng.random(size=int(lengths.sum()))
    other = rng.integers(0, len(vocab), size=int(lengths.sum()))
    at = 0
    for p, n in enumerate(lengths.tolist()):
        ref, hyp = [], []
        for k in range(at, at + n):
            w, x = vocab[words[k]], draws[k]
            ref.append(w)
            if x < 0.05:
                continue
            hyp.append(vocab[other[k]] if x < 0.12 else w)
            if x > 0.98:
                hyp.append(vocab[other[k - 1]])
        at += n
        utt = f"spk{p % 50:02d}-utt{p:06d}"
        refs[utt] = " ".join(ref)
        hyps[utt] = " ".join(hyp)
    return refs, hyps


def _best_of(repeat: int, func) -> tuple[tuple[float, float], object]:
    """Best wall-clock and best process-CPU seconds of ``repeat`` calls, and the result. CPU
    time (this process only; sclite's runs in a child and is not counted) shows what the wall
    clock hides on a busy machine."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(max(1, repeat)):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = func()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return (wall, cpu), result


def run(args: argparse.Namespace) -> int:
    from asr.errors import AsrError
    from asr.scoring import read_transcripts, score, word_errors
    from asr.scoring.sclite import find_sclite, run_sclite
    from asr.utils import atomic_write_text

    if bool(args.ref) != bool(args.hyp):
        raise AsrError("give both --ref and --hyp, or neither (synthetic pairs)")
    if args.ref:
        refs, hyps = read_transcripts(args.ref), read_transcripts(args.hyp)
        source = f"{args.ref} vs {args.hyp}"
    else:
        refs, hyps = synthetic_pairs(args.pairs, args.seed)
        source = f"{args.pairs} synthetic pairs (seed {args.seed})"
    ids = list(refs)
    ref_list = [refs[u] for u in ids]
    hyp_list = [hyps.get(u, "") for u in ids]
    score(dict(list(refs.items())[:10]), {u: hyps.get(u, "") for u in ids[:10]})  # load compiled code

    rows: list[dict] = []

    def add(name: str, times: tuple[float, float], s: int, d: int, i: int, ref_words: int) -> None:
        seconds, cpu = times
        rows.append({"scorer": name, "pairs": len(ids), "seconds": seconds, "cpu_seconds": cpu,
                     "pairs_per_s": len(ids) / seconds if seconds else 0.0,
                     "subs": s, "dels": d, "ins": i,
                     "wer": 100.0 * (s + d + i) / ref_words if ref_words else 0.0})

    seconds, report = _best_of(args.repeat, lambda: score(refs, hyps, ignore_extra=True))
    add("asr score(): WER + CER + alignments", seconds, report.wer.subs, report.wer.dels,
        report.wer.ins, report.wer.ref_len)
    seconds, wer = _best_of(args.repeat, lambda: word_errors(ref_list, hyp_list))
    add("asr word_errors(): WER counts", seconds, wer.subs, wer.dels, wer.ins, wer.ref_len)
    try:
        import jiwer
    except ImportError:
        jiwer = None
    if jiwer is not None:
        # jiwer rejects empty references; those pairs are left out of its row only.
        pairs = [(r, h) for r, h in zip(ref_list, hyp_list, strict=True) if r.strip()]
        seconds, out = _best_of(args.repeat, lambda: jiwer.process_words(
            [r for r, _ in pairs], [h for _, h in pairs]))
        add(f"jiwer {getattr(jiwer, '__version__', '')}.process_words: WER counts".replace(" .", "."),
            seconds, out.substitutions, out.deletions, out.insertions,
            out.hits + out.substitutions + out.deletions)
    sclite = None if args.no_sclite else find_sclite()
    reference = None
    if sclite:
        seconds, reference = _best_of(1, lambda: run_sclite(refs, hyps, sclite))
        wall, _ = seconds
        add("sclite (SCTK) -o rsum, incl. writing trn", (wall, float("nan")), reference.subs,
            reference.dels, reference.ins, reference.ref_words)
    baseline = next((r for r in rows if r["scorer"].startswith("jiwer")), None)
    print(f"# scoring: {source}; {os.cpu_count()} CPUs ({platform.machine()}), load average "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}, best of {args.repeat}")
    print("| scorer | pairs | seconds | CPU s | pairs/s | speed vs jiwer | WER % | sub | del | ins | = sclite |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ratio = f"{baseline['seconds'] / r['seconds']:.1f}x" if baseline and r["seconds"] else "n/a"
        same = "n/a"
        if reference is not None:
            same = "yes" if (r["subs"], r["dels"], r["ins"]) == (reference.subs, reference.dels, reference.ins) else "no"
        cpu = "n/a" if r["cpu_seconds"] != r["cpu_seconds"] else f"{r['cpu_seconds']:.3f}"
        print(f"| {r['scorer']} | {r['pairs']} | {r['seconds']:.3f} | {cpu} | {r['pairs_per_s']:.0f} | "
              f"{ratio} | {r['wer']:.2f} | {r['subs']} | {r['dels']} | {r['ins']} | {same} |")
    if args.json:
        atomic_write_text(args.json, json.dumps({"source": source, "rows": rows}, indent=1) + "\n")
    return 0
