"""The digits data and training figures that ``asr benchmark all`` needs.

``python -m asr.benchmarks.suite.digits --fsdd DIR --out DIR [--num-train N ...]`` builds the
digits recipe's data dirs from FSDD (as ``recipes/digits/run.sh --stage 0`` does, with fewer
connected utterances when asked) and, with ``--max-train``, keeps an evenly spread subset of
the training set, so that a short run need not read all 6,400 training utterances.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_EPOCH_RE = re.compile(r"\bepoch (\d+): ")
_DEV_ER_RE = re.compile(r"\bdev ([A-Z]+) ([\d.]+)%")
_SECONDS_RE = re.compile(r", ([\d.]+) s\b")
_FPS_RE = re.compile(r", (\d+) frames/s")
_EXPORT_RE = re.compile(r"exported model \((.*)\) to ")


def subset_data_dir(data_dir: Path, keep: int) -> int:
    """Keep ``keep`` utterances of a Kaldi data dir (evenly spread over its sorted ids), in
    place; the number kept. Plain text edits of wav.scp, text, utt2spk and spk2utt."""
    wav = (data_dir / "wav.scp").read_text().splitlines()
    ids = sorted(line.split(maxsplit=1)[0] for line in wav if line.strip())
    if keep <= 0 or keep >= len(ids):
        return len(ids)
    step = len(ids) / keep
    kept = {ids[int(i * step)] for i in range(keep)}
    for name in ("wav.scp", "text", "utt2spk"):
        path = data_dir / name
        if path.is_file():
            lines = [line for line in path.read_text().splitlines()
                     if line.split(maxsplit=1)[0] in kept]
            path.write_text("".join(f"{line}\n" for line in lines))
    speakers: dict[str, list[str]] = {}
    for line in (data_dir / "utt2spk").read_text().splitlines():
        utt, spk = line.split()
        speakers.setdefault(spk, []).append(utt)
    lines = [f"{spk} {' '.join(sorted(utts))}\n" for spk, utts in sorted(speakers.items())]
    (data_dir / "spk2utt").write_text("".join(lines))
    for stale in data_dir.glob("split*"):  # splits of the full set no longer match
        for path in sorted(stale.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        stale.rmdir()
    return len(kept)


def parse_train_log(text: str) -> dict:
    """Per-epoch seconds, frames/s and dev error rate from ``asr train``'s log lines, and the
    export line. Lenient: a field the log does not show is left out."""
    epochs: list[dict] = []
    for line in text.splitlines():
        match = _EPOCH_RE.search(line)
        if not match:
            continue
        epoch: dict = {"epoch": int(match.group(1))}
        if dev := _DEV_ER_RE.search(line):
            epoch["dev_metric"], epoch["dev_rate"] = dev.group(1), float(dev.group(2))
        if seconds := _SECONDS_RE.search(line[match.end():]):
            epoch["seconds"] = float(seconds.group(1))
        if fps := _FPS_RE.search(line):
            epoch["frames_per_s"] = int(fps.group(1))
        epochs.append(epoch)
    out: dict = {"epochs": epochs}
    timed = [e["seconds"] for e in epochs if "seconds" in e]
    if timed:
        out["seconds_per_epoch"] = sum(timed) / len(timed)
    if exported := _EXPORT_RE.search(text):
        out["exported"] = exported.group(1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.benchmarks.suite.digits",
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fsdd", required=True, help="FSDD root (holding recordings/)")
    parser.add_argument("--out", required=True, help="where to write the data dirs")
    parser.add_argument("--num-train", type=int, default=4000, help="connected training utterances")
    parser.add_argument("--num-dev", type=int, default=300)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--max-train", type=int, default=0,
                        help="keep this many training utterances (0: all)")
    args = parser.parse_args(argv)
    from asr.corpora import fsdd
    from asr.errors import AsrError

    try:
        dirs = fsdd.prepare(args.fsdd, args.out, args.num_train, args.num_dev, args.num_test)
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kept = subset_data_dir(Path(dirs["train"]), args.max_train)
    sizes = {name: sum(1 for _ in (Path(path) / "text").open()) for name, path in dirs.items()}
    sizes["train"] = kept
    print(" ".join(f"{name}={count}" for name, count in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
