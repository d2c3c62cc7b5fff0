"""Kaldi's yes/no corpus (waves_yesno: 60 recordings of 8 Hebrew yes/no words, 8 kHz) ->
Kaldi data dirs with Kaldi's split: of the sorted recordings, the first 29 are test and the
other 31 train. The file name is the label sequence (1 = YES, 0 = NO).

    python -m asr.corpora.yesno --corpus-dir DIR --out data
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from asr.data.datadir import write_data_dir
from asr.data.utterance import Utterance
from asr.errors import AsrError

NAME_RE = re.compile(r"^[01](_[01]){7}\.wav$")
NUM_TEST = 29
SPEAKER = "global"  # one unnamed speaker, as in Kaldi's recipe


def scan(corpus_dir: str | Path) -> list[Path]:
    corpus_dir = Path(corpus_dir)
    wav_dir = corpus_dir / "waves_yesno" if (corpus_dir / "waves_yesno").is_dir() else corpus_dir
    if not wav_dir.is_dir():
        raise AsrError(f"{corpus_dir}: yesno corpus directory not found (pass --corpus-dir)")
    waves = sorted((p for p in wav_dir.iterdir() if NAME_RE.match(p.name)), key=lambda p: p.name.encode())
    if not waves:
        raise AsrError(f"{wav_dir}: no yes/no recordings (names like 0_1_1_0_0_1_0_1.wav)")
    return waves


def to_utterance(path: Path) -> Utterance:
    labels = path.stem.split("_")
    text = " ".join("YES" if label == "1" else "NO" for label in labels)
    return Utterance(f"{SPEAKER}-{path.stem}", str(path.resolve()), text, SPEAKER)


def prepare(corpus_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    waves = scan(corpus_dir)
    out_dir = Path(out_dir)
    test, train = waves[:NUM_TEST], waves[NUM_TEST:]
    return {
        "train": write_data_dir(out_dir / "train", [to_utterance(p) for p in train]).path,
        "test": write_data_dir(out_dir / "test", [to_utterance(p) for p in test]).path,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.yesno", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", required=True, help="directory holding waves_yesno/ (or the waves)")
    parser.add_argument("--out", required=True, help="where to write the data dirs")
    args = parser.parse_args(argv)
    try:
        dirs = prepare(args.corpus_dir, args.out)
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in dirs.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
