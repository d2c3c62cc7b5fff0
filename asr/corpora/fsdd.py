"""Free Spoken Digit Dataset (Zohar Jackson et al., CC BY-SA 4.0) -> Kaldi data dirs.

``recordings/{digit}_{speaker}_{index}.wav``: 6 speakers x 10 digits x 50 takes, 8 kHz mono.
Official split: takes 0-4 are test, the rest train. Here takes 5-9 are held out of training as
dev, so train (10-49), dev (5-9) and test (0-4) never share a recording.

Besides isolated digits, connected-digit utterances are built by concatenating 2-7 recordings of
one speaker with random 50-300 ms pauses (and the same at both ends), from a fixed seed.

    python -m asr.corpora.fsdd --corpus-dir DIR --out data [--download]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.datadir import write_data_dir
from asr.data.utterance import Utterance
from asr.download import DownloadError, download, extract_tar
from asr.errors import AsrError
from asr.utils import setup_logging

log = logging.getLogger(__name__)

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SAMPLE_RATE = 8000
VERSION = "v1.0.10"
URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{VERSION}.tar.gz"
# Digest of the 3,000 recordings (see recordings_digest), computed on the reference copy of
# v1.0.10 that the recipe was developed on; it pins the content whatever
# the archive's compression, so a download and a local copy are checked the same way.
RECORDINGS_SHA256 = "1b948ca5cdada869f790e1c104b8cd4f15f5dd24ebd3d996fdf5520e97a5a240"
NAME_RE = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
SPLITS = {"test": range(0, 5), "dev": range(5, 10), "train": range(10, 50)}


@dataclass(frozen=True)
class Recording:
    path: Path
    digit: int
    speaker: str
    take: int


def scan(corpus_dir: str | Path) -> list[Recording]:
    """All recordings under ``corpus_dir/recordings`` (or ``corpus_dir`` itself)."""
    corpus_dir = Path(corpus_dir)
    rec_dir = corpus_dir / "recordings" if (corpus_dir / "recordings").is_dir() else corpus_dir
    if not rec_dir.is_dir():
        raise AsrError(f"{corpus_dir}: FSDD corpus directory not found (pass --corpus-dir or --download)")
    recordings = []
    for path in sorted(rec_dir.glob("*.wav")):
        match = NAME_RE.match(path.name)
        if match:
            recordings.append(Recording(path.resolve(), int(match.group(1)), match.group(2), int(match.group(3))))
    if not recordings:
        raise AsrError(f"{rec_dir}: no FSDD recordings ('{{digit}}_{{speaker}}_{{index}}.wav')")
    return recordings


def recordings_digest(recordings: list[Recording]) -> str:
    """SHA-256 over the sorted file names and each file's SHA-256."""
    outer = hashlib.sha256()
    for rec in sorted(recordings, key=lambda r: r.path.name):
        outer.update(rec.path.name.encode())
        outer.update(hashlib.sha256(rec.path.read_bytes()).hexdigest().encode())
    return outer.hexdigest()


def fetch(
    dest: str | Path,
    url: str = URL,
    archive_sha256: str | None = None,
    expected_digest: str = RECORDINGS_SHA256,
) -> Path:
    """Download (resuming a partial file) and unpack FSDD into ``dest``; verify the recordings'
    digest (:func:`recordings_digest`) against ``expected_digest``. Returns the corpus root."""
    dest = Path(dest)
    archive = download(url, dest / f"fsdd-{VERSION}.tar.gz", sha256=archive_sha256)
    extract_tar(archive, dest)
    roots = [p.parent for p in dest.glob("*/recordings")]
    if not roots:
        raise DownloadError(f"{archive}: no recordings/ directory inside")
    root = roots[0]
    digest = recordings_digest(scan(root))
    if digest != expected_digest:
        # Nothing unverified is left for a later run to trust.
        shutil.rmtree(root, ignore_errors=True)
        archive.unlink(missing_ok=True)
        raise DownloadError(
            f"{root}: recordings digest {digest} != expected {expected_digest}; the download is "
            f"incomplete or not FSDD {VERSION}: deleted it and {archive.name}, run again to retry"
        )
    return root


def _utt(rec: Recording) -> Utterance:
    return Utterance(f"{rec.speaker}-iso-{rec.digit}-{rec.take:02d}", str(rec.path), WORDS[rec.digit], rec.speaker)


def _silence(rng: random.Random, np_rng: np.random.Generator, lo_ms: int, hi_ms: int) -> np.ndarray:
    n = int(SAMPLE_RATE * rng.uniform(lo_ms, hi_ms) / 1000)
    # A faint noise floor rather than digital zeros, as in any real recording.
    return (np_rng.standard_normal(n) * 1e-4).astype(np.float32)


def make_connected(
    recordings: list[Recording],
    count: int,
    split: str,
    wav_dir: Path,
    seed: int,
    min_digits: int = 2,
    max_digits: int = 7,
) -> list[Utterance]:
    """Build ``count`` connected-digit utterances of one speaker each and write their WAVs."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[Recording]] = {}
    for rec in recordings:
        by_speaker.setdefault(rec.speaker, []).append(rec)
    speakers = sorted(by_speaker)
    wav_dir.mkdir(parents=True, exist_ok=True)
    utterances = []
    for n in range(count):
        speaker = speakers[rng.randrange(len(speakers))]
        chosen = [rng.choice(by_speaker[speaker]) for _ in range(rng.randint(min_digits, max_digits))]
        pieces = [_silence(rng, np_rng, 50, 300)]
        for rec in chosen:
            audio, rate = sf.read(rec.path, dtype="float32")
            if rate != SAMPLE_RATE:
                raise AsrError(f"{rec.path}: expected {SAMPLE_RATE} Hz, found {rate} Hz")
            pieces += [audio, _silence(rng, np_rng, 50, 300)]
        utt_id = f"{speaker}-con-{split}-{n:05d}"
        path = wav_dir / f"{utt_id}.wav"
        sf.write(path, np.concatenate(pieces), SAMPLE_RATE, subtype="PCM_16")
        utterances.append(Utterance(utt_id, str(path.resolve()), " ".join(WORDS[r.digit] for r in chosen), speaker))
    return utterances


def prepare(
    corpus_dir: str | Path,
    out_dir: str | Path,
    num_train: int = 4000,
    num_dev: int = 300,
    num_test: int = 500,
    seed: int = 1234,
) -> dict[str, Path]:
    """Write data dirs ``train`` (isolated + connected), ``dev`` (connected), ``test``
    (connected) and ``test_isolated`` under ``out_dir``; return their paths."""
    recordings = scan(corpus_dir)
    out_dir = Path(out_dir)
    wav_dir = out_dir / "wav"
    pools = {name: [r for r in recordings if r.take in takes] for name, takes in SPLITS.items()}
    counts = {"train": num_train, "dev": num_dev, "test": num_test}
    dirs = {}
    for offset, (split, count) in enumerate(counts.items()):
        connected = make_connected(pools[split], count, split, wav_dir / split, seed + offset)
        utts = connected + ([_utt(r) for r in pools["train"]] if split == "train" else [])
        dirs[split] = write_data_dir(out_dir / split, utts).path
        log.info("%s: %d utterances (%d connected)", dirs[split], len(utts), len(connected))
    dirs["test_isolated"] = write_data_dir(out_dir / "test_isolated", [_utt(r) for r in pools["test"]]).path
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.fsdd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", required=True, help="FSDD root (holding recordings/)")
    parser.add_argument("--out", required=True, help="where to write the data dirs")
    parser.add_argument("--download", action="store_true", help="download FSDD into --corpus-dir if absent")
    parser.add_argument("--url", default=URL, help="download URL (file:// works for local mirrors)")
    parser.add_argument("--num-train", type=int, default=4000)
    parser.add_argument("--num-dev", type=int, default=300)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        corpus = Path(args.corpus_dir)
        if args.download and not (corpus / "recordings").is_dir():
            corpus = fetch(corpus, args.url)
        prepare(corpus, args.out, args.num_train, args.num_dev, args.num_test, args.seed)
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
