"""LibriSpeech (Panayotov et al. 2015, openslr.org/12, CC BY 4.0) -> Kaldi data dirs.

Layout: ``LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>-<utt>.flac`` with one
``<reader>-<chapter>.trans.txt`` per chapter (``<utt-id> TRANSCRIPT``, upper case). As in Kaldi's
recipe the speaker of an utterance is ``<reader>-<chapter>`` (so that speaker ids prefix the
utterance ids). Training sets: 100 h = train-clean-100, 460 h = + train-clean-360, 960 h = +
train-other-500. Archives are downloaded from openslr and verified with the SHA-256 sums of
torchaudio's LibriSpeech loader and the MD5 sums openslr publishes; the LM resources
(openslr.org/11: the official 4-gram ARPA, the LM corpus, vocabulary and lexicon) with
openslr's MD5 sums.

    python -m asr.corpora.librispeech download --part dev-clean --dest downloads
    python -m asr.corpora.librispeech prepare --corpus-dir DIR --part dev-clean --out data/dev_clean \\
        [--job J --num-jobs N]      # speakers J, J+N, ... only (parallel data prep)
    python -m asr.corpora.librispeech fabricate --out DIR   # a tiny corpus in this layout
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from asr.data.datadir import write_data_dir
from asr.data.durations import get_durations
from asr.data.utterance import Utterance
from asr.download import DownloadError, download, extract_tar
from asr.errors import AsrError
from asr.utils import atomic_write_text

log = logging.getLogger(__name__)

AUDIO_URL = "https://www.openslr.org/resources/12"
LM_URL = "https://www.openslr.org/resources/11"
PARTS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
         "test-clean", "test-other")
SUBSETS = {
    "100": ("train-clean-100",),
    "460": ("train-clean-100", "train-clean-360"),
    "960": ("train-clean-100", "train-clean-360", "train-other-500"),
}
# SHA-256 of the archives, as torchaudio.datasets.LIBRISPEECH verifies them.
SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}
# MD5 sums published by openslr (md5sum.txt of resources 11 and 12).
MD5 = {
    "dev-clean.tar.gz": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other.tar.gz": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean.tar.gz": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other.tar.gz": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100.tar.gz": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360.tar.gz": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500.tar.gz": "d1a0fd59409feb2c614ce4d30c387708",
    "3-gram.arpa.gz": "74cbb837e582378c26c602e1c8cbcb9c",
    "3-gram.pruned.1e-7.arpa.gz": "9a0f1325bcaf3a0f7b7be4be10823c2a",
    "3-gram.pruned.3e-7.arpa.gz": "8f67ec741827742eee05799ab7605b50",
    "4-gram.arpa.gz": "6abdcd5b055bd482e4f9defe91d40408",
    "librispeech-lexicon.txt": "28f72663f6bfed7cd346283c064c315b",
    "librispeech-lm-norm.txt.gz": "c83c64c726a1aedfe65f80aa311de402",
    "librispeech-vocab.txt": "bf3cc7a50112831ed8b0afa40cae96a5",
}
LM_FILES = ("4-gram.arpa.gz", "3-gram.arpa.gz", "3-gram.pruned.1e-7.arpa.gz",
            "3-gram.pruned.3e-7.arpa.gz", "librispeech-lm-norm.txt.gz", "librispeech-vocab.txt",
            "librispeech-lexicon.txt")
TRANS_RE = re.compile(r"^(\d+)-(\d+)\.trans\.txt$")


class LibriSpeechError(AsrError):
    """The corpus directory is not LibriSpeech's layout, or a file of it is malformed."""


def md5_file(path: str | Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - openslr publishes MD5 sums, not a security use
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, dest: Path, sha256: str | None, md5: str) -> Path:
    """Resumable download verified by SHA-256 (when known) and openslr's MD5."""
    path = download(url, dest, sha256=sha256)
    actual = md5_file(path)
    if actual != md5:
        path.unlink()
        raise DownloadError(f"{url}: MD5 mismatch (expected {md5}, got {actual}); the file was "
                            "deleted, run the download again")
    return path


def download_part(part: str, dest: str | Path, base_url: str = AUDIO_URL) -> Path:
    """Download and extract ``part`` into ``dest`` (``dest/LibriSpeech/<part>``), once."""
    if part not in PARTS:
        raise LibriSpeechError(f"unknown LibriSpeech part {part!r} (one of {', '.join(PARTS)})")
    dest = Path(dest)
    target = dest / "LibriSpeech" / part
    if (target / ".complete").is_file():
        return target
    archive = _fetch(f"{base_url}/{part}.tar.gz", dest / f"{part}.tar.gz", SHA256[part], MD5[f"{part}.tar.gz"])
    extract_tar(archive, dest)
    if not target.is_dir():
        raise DownloadError(f"{archive}: no LibriSpeech/{part} inside; delete it and retry")
    (target / ".complete").touch()
    return target


def download_lm(name: str, dest: str | Path, base_url: str = LM_URL, gunzip: bool = True) -> Path:
    """Download one LM resource of openslr.org/11; ``.gz`` files are also unpacked."""
    if name not in LM_FILES:
        raise LibriSpeechError(f"unknown LM resource {name!r} (one of {', '.join(LM_FILES)})")
    dest = Path(dest)
    path = _fetch(f"{base_url}/{name}", dest / name, None, MD5[name])
    if gunzip and name.endswith(".gz"):
        plain = path.with_suffix("")
        if not plain.is_file():
            part = plain.with_name(plain.name + ".part")
            with gzip.open(path, "rb") as src, open(part, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            part.replace(plain)
        return plain
    return path


def find_part(corpus_dir: str | Path, part: str) -> Path:
    corpus_dir = Path(corpus_dir)
    for candidate in (corpus_dir / "LibriSpeech" / part, corpus_dir / part):
        if candidate.is_dir():
            return candidate
    raise LibriSpeechError(f"{corpus_dir}: no {part}/ or LibriSpeech/{part}/ (download it with "
                           f"`python -m asr.corpora.librispeech download --part {part}`)")


def read_chapter(trans: Path) -> list[tuple[str, str, Path]]:
    """(utterance id, transcript, flac path) of one chapter's ``.trans.txt``."""
    rows = []
    text = trans.read_text(encoding="utf-8")
    prefix = trans.name[: -len(".trans.txt")] + "-"
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].startswith(prefix):
            raise LibriSpeechError(f"{trans}:{lineno}: expected '{prefix}NNNN TRANSCRIPT', got {line!r}")
        flac = trans.parent / f"{fields[0]}.flac"
        if not flac.is_file():
            raise LibriSpeechError(f"{trans}:{lineno}: {flac.name} is missing; the download is "
                                   "incomplete, extract the archive again")
        rows.append((fields[0], " ".join(fields[1].split()), flac))
    return rows


def prepare_part(corpus_dir: str | Path, part: str, out_dir: str | Path, job: int = 1,
                 num_jobs: int = 1, durations: bool = True) -> Path:
    """``out_dir`` (wav.scp of FLAC paths, text, utt2spk, spk2utt, utt2dur) for the readers
    ``job-1, job-1+num_jobs, ...`` of ``part`` in sorted order (all of them by default)."""
    if not 1 <= job <= num_jobs:
        raise LibriSpeechError(f"--job {job} is not in 1..{num_jobs}")
    root = find_part(corpus_dir, part)
    readers = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not readers:
        raise LibriSpeechError(f"{root}: no reader directories (LibriSpeech/{part}/READER/CHAPTER/)")
    utts = []
    for reader in readers[job - 1 :: num_jobs]:
        for chapter in sorted(p for p in reader.iterdir() if p.is_dir()):
            trans = chapter / f"{reader.name}-{chapter.name}.trans.txt"
            if not trans.is_file():
                raise LibriSpeechError(f"{chapter}: {trans.name} is missing")
            speaker = f"{reader.name}-{chapter.name}"
            utts.extend(Utterance(utt_id, str(flac.resolve()), text, speaker)
                        for utt_id, text, flac in read_chapter(trans))
    data = write_data_dir(out_dir, utts)
    if durations and utts:
        get_durations(data.path)
    return data.path


# --- a fabricated corpus in LibriSpeech's layout, for tests and smoke runs -----------------

FAKE_SENTENCES = [
    "HE HOPED THERE WOULD BE STEW FOR DINNER", "TURNIPS AND CARROTS AND BRUISED POTATOES",
    "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM", "THE YELLOW LAMPS WOULD LIGHT UP HERE AND THERE",
    "HELLO BERTIE ANY GOOD IN YOUR MIND", "NUMBER TEN FRESH NELLY IS WAITING ON YOU",
    "THE DUKE HAD A SHARP FACE", "SHE SAID THE BOOK WAS ON THE TABLE",
]


def fabricate(out_dir: str | Path, parts: tuple[str, ...] = ("train-clean-100", "dev-clean", "test-clean"),
              readers: int = 2, chapters: int = 1, utts: int = 3, seed: int = 0) -> Path:
    """``out_dir/LibriSpeech/<part>/<reader>/<chapter>/`` with 16 kHz FLAC files and
    ``.trans.txt`` transcripts; each letter is a short tone so that the audio follows the text."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    rate = 16000
    for p_index, part in enumerate(parts):
        for r in range(readers):
            reader = str(100 + 10 * p_index + r)
            for c in range(chapters):
                chapter = str(1000 + 7 * r + c)
                folder = out_dir / "LibriSpeech" / part / reader / chapter
                folder.mkdir(parents=True, exist_ok=True)
                lines = []
                for u in range(utts):
                    utt_id = f"{reader}-{chapter}-{u:04d}"
                    text = FAKE_SENTENCES[int(rng.integers(len(FAKE_SENTENCES)))]
                    pieces = [np.zeros(1600)]
                    for char in text:
                        t = np.arange(640) / rate
                        tone = 0.0 if char == " " else 0.3 * np.sin(2 * np.pi * (300 + 40 * (ord(char) - 65)) * t)
                        pieces.append(tone + 0.01 * rng.standard_normal(640))
                    pieces.append(np.zeros(1600))
                    sf.write(folder / f"{utt_id}.flac", np.concatenate(pieces), rate, subtype="PCM_16")
                    lines.append(f"{utt_id} {text}\n")
                atomic_write_text(folder / f"{reader}-{chapter}.trans.txt", "".join(lines))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.librispeech",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("download", help="download and extract parts (and LM resources)")
    p.add_argument("--part", action="append", default=[], choices=PARTS)
    p.add_argument("--lm", action="append", default=[], choices=LM_FILES)
    p.add_argument("--dest", required=True)
    p.add_argument("--audio-url", default=AUDIO_URL, help="mirror of openslr.org/resources/12")
    p.add_argument("--lm-url", default=LM_URL, help="mirror of openslr.org/resources/11")
    p = sub.add_parser("prepare", help="one part -> a Kaldi data dir")
    p.add_argument("--corpus-dir", required=True, help="directory holding LibriSpeech/")
    p.add_argument("--part", required=True, choices=PARTS)
    p.add_argument("--out", required=True)
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--num-jobs", type=int, default=1)
    p = sub.add_parser("fabricate", help="write a tiny corpus in LibriSpeech's layout (tests)")
    p.add_argument("--out", required=True)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--utts", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        if args.action == "download":
            for part in args.part:
                print(download_part(part, args.dest, args.audio_url))
            for name in args.lm:
                print(download_lm(name, args.dest, args.lm_url))
        elif args.action == "prepare":
            print(prepare_part(args.corpus_dir, args.part, args.out, args.job, args.num_jobs))
        else:
            print(fabricate(args.out, readers=args.readers, utts=args.utts))
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
