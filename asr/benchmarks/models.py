"""Model x data table: WER, CER and speed of every model on every data directory.

Each (model, data, decoder) triple is decoded with the library's decoding loop
(:func:`asr.decode.decode_dir.decode_data_dir`, the one ``asr decode`` uses) and scored with
:func:`asr.scoring.score`. RTF is recognizer seconds per second of audio (features, network
and search; reading the audio and loading the model are not timed), after one untimed warm-up
call per model. Writes OUT/table.md, OUT/table.csv, OUT/table.json, OUT/wer_vs_rtf.png and
each pair's hypotheses under OUT/decode/.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import re
from pathlib import Path

import numpy as np

from asr.decode.decode_dir import GREEDY, available_decoders, decode_data_dir
from asr.errors import AsrError
from asr.utils import atomic_write, atomic_write_text

log = logging.getLogger("asr.benchmark")

COLUMNS = ["model", "data", "decoder", "WER", "CER", "RTF", "utterances/s", "device"]


def add_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--model", nargs="+", required=required, metavar="M",
                        help="model directories or names in the model store")
    parser.add_argument("--data", nargs="+", required=required, metavar="D",
                        help="Kaldi data directories (with `text` for WER/CER)")
    parser.add_argument("--decoder", nargs="+", default=[GREEDY], choices=available_decoders(),
                        help=f"decoders to run on every pair (default {GREEDY})")
    parser.add_argument("--out", default="exp/benchmark",
                        help="output directory (default exp/benchmark)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--batch-size", type=int, default=32, help="utterances per forward pass")
    parser.add_argument("--max-bad-utts", type=int, default=0,
                        help="unreadable utterances tolerated per data directory")


def device_label(device: object) -> str:
    """``cpu (4 threads)`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table with :data:`COLUMNS`."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        cells = [r["model"], r["data"], r["decoder"], _fmt(r["WER"], 2), _fmt(r["CER"], 2),
                 _fmt(r["RTF"], 4), _fmt(r["utterances/s"], 1), r["device"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_cell(r[k], k) for k in COLUMNS})
    return buffer.getvalue()


_CSV_DIGITS = {"WER": 4, "CER": 4, "RTF": 6, "utterances/s": 3}


def _csv_cell(value: object, column: str) -> object:
    if value is None:
        return ""
    return round(value, _CSV_DIGITS[column]) if column in _CSV_DIGITS else value


def plot_png(rows: list[dict]) -> bytes:
    """PNG bytes: WER against RTF, one labelled point per row that has a WER."""
    # The object-oriented API with the Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    points = [r for r in rows if r["WER"] is not None and r["RTF"]]
    for r in points:
        ax.scatter(r["RTF"], r["WER"])
        ax.annotate(f"{r['model']} | {r['data']} | {r['decoder']}", (r["RTF"], r["WER"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    rtfs = [r["RTF"] for r in points]
    if rtfs and max(rtfs) / min(rtfs) > 20:
        ax.set_xscale("log")  # CPU and GPU rows differ by orders of magnitude
    ax.margins(x=0.3, y=0.15)  # room for the point labels
    ax.set_xlabel("real-time factor (recognizer s per audio s; lower is faster)")
    ax.set_ylabel("WER %")
    ax.set_title("WER against RTF")
    ax.grid(True, alpha=0.3)
    if not points:
        ax.text(0.5, 0.5, "no rows with references", ha="center", va="center", transform=ax.transAxes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _warm_up(recognizer) -> None:
    """One untimed call: the first forward pass pays for lazy initialisation (CUDA context,
    kernel selection, allocator growth) that a timed run should not include."""
    recognizer.transcribe_signals([np.zeros(recognizer.sample_rate, dtype=np.float32)])


def run(args: argparse.Namespace) -> int:
    import asr
    from asr.data.tables import write_kaldi_map
    from asr.scoring import score
    from asr.utils import setup_logging

    setup_logging(getattr(args, "verbose", False))
    if not args.model or not args.data:
        raise AsrError("give at least one --model and one --data directory")
    for decoder in args.decoder:
        if decoder not in available_decoders():
            raise AsrError(f"decoder '{decoder}' is not available; choose from {', '.join(available_decoders())}")
    out = Path(args.out)
    rows: list[dict] = []
    for model in args.model:
        recognizer = asr.load_model(model, device=args.device)
        device = device_label(recognizer.device)
        _warm_up(recognizer)
        for data in args.data:
            for decoder in args.decoder:
                run_ = decode_data_dir(recognizer, data, args.batch_size, args.max_bad_utts, decoder)
                wer = cer = None
                pair_dir = out / "decode" / f"{_slug(model)}__{_slug(data)}__{decoder}"
                write_kaldi_map(pair_dir / "text", run_.hyps)
                if run_.refs:
                    report = score(run_.refs, run_.hyps, run_.utt2spk)
                    wer, cer = report.wer.rate, report.cer.rate
                    atomic_write_text(pair_dir / "wer", "\n".join(report.lines()) + "\n")
                rows.append({
                    "model": model, "data": data, "decoder": decoder, "WER": wer, "CER": cer,
                    "RTF": run_.rtf, "utterances/s": run_.utts_per_second, "device": device,
                    "utterances": len(run_.hyps), "audio_seconds": run_.audio_seconds,
                    "unreadable": run_.unreadable,
                })
                log.info("%s on %s (%s): WER %s, RTF %.4f", model, data, decoder,
                         _fmt(wer, 2), run_.rtf)
    table = markdown_table(rows)
    atomic_write_text(out / "table.md", table + "\n")
    atomic_write_text(out / "table.csv", csv_table(rows))
    atomic_write_text(out / "table.json", json.dumps(rows, indent=1) + "\n")
    png = plot_png(rows)
    atomic_write(out / "wer_vs_rtf.png", lambda handle: handle.write(png))
    print(f"# model x data: {len(args.model)} model(s), {len(args.data)} data dir(s), "
          f"decoder(s) {', '.join(args.decoder)}; tables and plot in {out}")
    print(table)
    return 0
