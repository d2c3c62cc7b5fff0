"""``asr decode``: transcribe a data directory and score it when it has references."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from asr.audio import load_audio
from asr.cli.common import add_verbosity
from asr.data import read_data_dir
from asr.data.kaldi import write_kaldi_map
from asr.errors import AsrError, AudioError
from asr.score import score
from asr.utils import atomic_write_text, setup_logging

log = logging.getLogger("asr.decode")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "decode",
        help="decode a data directory (greedy) and score it",
        description="Writes OUT/text (hypotheses), OUT/words.json (word times); with a reference "
        "`text` in the data dir also OUT/wer (Kaldi lines), OUT/per_spk and OUT/score.json.",
    )
    p.add_argument("--model", required=True, help="model directory or name in the model store")
    p.add_argument("--data", required=True, help="data directory (wav.scp, optional text)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    p.add_argument("--max-bad-utts", type=int, default=0,
                   help="unreadable utterances tolerated (skipped and listed) before failing")
    add_verbosity(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    setup_logging(args.verbose, out / "decode.log")
    import asr

    recognizer = asr.load_model(args.model, device=args.device)
    data = read_data_dir(args.data, require_text=False)
    signals: dict[str, object] = {}
    bad: list[str] = []
    for utt in data.utterances:
        try:
            signals[utt.utt_id], _ = load_audio(utt.wav, recognizer.sample_rate)
        except AudioError as exc:
            log.warning("utterance %s: %s", utt.utt_id, exc)
            bad.append(utt.utt_id)
    if len(bad) > args.max_bad_utts:
        raise AsrError(f"{data.path}: {len(bad)} unreadable utterance(s) (first '{bad[0]}'), more than --max-bad-utts {args.max_bad_utts}")
    order = sorted(signals, key=lambda u: len(signals[u]))
    hyps: dict[str, str] = {}
    words: dict[str, list] = {}
    audio_seconds = sum(len(s) for s in signals.values()) / recognizer.sample_rate
    start = time.perf_counter()
    for i in range(0, len(order), args.batch_size):
        ids = order[i : i + args.batch_size]
        for utt_id, result in zip(ids, recognizer.transcribe_signals([signals[u] for u in ids]), strict=True):
            hyps[utt_id] = result.text
            words[utt_id] = [w.__dict__ for w in result.words]
    elapsed = time.perf_counter() - start
    write_kaldi_map(out / "text", hyps)
    atomic_write_text(out / "words.json", json.dumps(words, indent=1) + "\n")
    rtf = elapsed / audio_seconds if audio_seconds else 0.0
    log.info("decoded %d utterances (%.1f s of audio) in %.1f s on %s: RTF %.4f",
             len(hyps), audio_seconds, elapsed, recognizer.device, rtf)
    refs = {u.utt_id: u.text for u in data.utterances if (data.path / "text").exists()}
    if refs:
        utt2spk = {u.utt_id: u.speaker for u in data.utterances}
        report = score(refs, hyps, utt2spk)
        lines = report.lines()
        atomic_write_text(out / "wer", "\n".join(lines) + "\n")
        atomic_write_text(out / "per_spk", report.speaker_table() + "\n")
        summary = report.to_dict() | {"rtf": rtf, "device": str(recognizer.device), "unreadable": bad}
        atomic_write_text(out / "score.json", json.dumps(summary, indent=2) + "\n")
        print("\n".join(lines))
    return 0
