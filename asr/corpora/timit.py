"""TIMIT (LDC93S1) -> Kaldi data dirs in the setup of Graves, Mohamed & Hinton (2013).

* train: the 462 speakers of ``TRAIN/``, SI and SX sentences only (SA sentences, read by every
  speaker, are left out): 3696 utterances.
* dev: the standard 50-speaker development set (Halberstadt 1998, the list of Kaldi's recipe)
  taken from ``TEST/``: 400 utterances.
* test: the 24-speaker core test set (2 male, 1 female per dialect region): 192 utterances.

Transcripts are the 61 phones of the ``.PHN`` files (``text``), the words of the ``.TXT`` file
are kept in ``text.words``. Scoring folds both sides to the 39 classes of Lee & Hon (1989) and
drops the glottal stop ``q`` (:func:`fold39`). The corpus is read as distributed: NIST SPHERE
``.WAV`` files (read by libsndfile), upper- or lower-case file names.

    python -m asr.corpora.timit prepare --corpus-dir DIR --out data
    python -m asr.corpora.timit fold39 IN_TEXT OUT_TEXT [IN_TEXT OUT_TEXT ...]
    python -m asr.corpora.timit fabricate --out DIR   # a tiny corpus in TIMIT's exact layout
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data.datadir import write_data_dir
from asr.data.tables import read_kaldi_lines
from asr.data.utterance import Utterance
from asr.errors import AsrError
from asr.utils import atomic_write, atomic_write_text

log = logging.getLogger(__name__)

# The 61 phones of the TIMIT transcriptions (TIMIT's PHONCODE.DOC), folded to Lee & Hon's 39
# classes; None: removed before scoring (the glottal stop).
FOLD_61_TO_39: dict[str, str | None] = {
    "aa": "aa", "ae": "ae", "ah": "ah", "ao": "aa", "aw": "aw", "ax": "ah", "ax-h": "ah",
    "axr": "er", "ay": "ay", "b": "b", "bcl": "sil", "ch": "ch", "d": "d", "dcl": "sil",
    "dh": "dh", "dx": "dx", "eh": "eh", "el": "l", "em": "m", "en": "n", "eng": "ng",
    "epi": "sil", "er": "er", "ey": "ey", "f": "f", "g": "g", "gcl": "sil", "h#": "sil",
    "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih", "iy": "iy", "jh": "jh", "k": "k",
    "kcl": "sil", "l": "l", "m": "m", "n": "n", "ng": "ng", "nx": "n", "ow": "ow", "oy": "oy",
    "p": "p", "pau": "sil", "pcl": "sil", "q": None, "r": "r", "s": "s", "sh": "sh", "t": "t",
    "tcl": "sil", "th": "th", "uh": "uh", "uw": "uw", "ux": "uw", "v": "v", "w": "w", "y": "y",
    "z": "z", "zh": "sh",
}
PHONES_61 = sorted(FOLD_61_TO_39)
PHONES_39 = sorted({p for p in FOLD_61_TO_39.values() if p is not None})

# The 50 development speakers (Halberstadt 1998), as listed in Kaldi's egs/timit/s5.
DEV_SPEAKERS = """
faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0 fdms0
fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0 mdls0 mdlf0
mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0 fgjd0 fjmg0 mroa0
mteb0 mjfc0 mrjr0 fmml0 mrws1
""".split()
# The 24 core test speakers: per dialect region DR1..DR8, two male and one female.
CORE_TEST_SPEAKERS = """
mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0 mbpm0 mklt0 fnlp0
mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0
""".split()
STANDARD_SIZES = {"train": (462, 3696), "dev": (50, 400), "test": (24, 192)}

WAV_RE = re.compile(r"^(s[aix]\d+)\.wav$", re.IGNORECASE)


class TimitError(AsrError):
    """The corpus directory is not TIMIT's layout, or one of its files is malformed."""


def fold39(phones: Iterable[str], where: str = "text") -> list[str]:
    """61 phones -> Lee & Hon's 39 classes; ``q`` is removed. Phones already in the 39-class
    set (a hypothesis of a folded model) pass through."""
    out = []
    for phone in phones:
        if phone in FOLD_61_TO_39:
            folded = FOLD_61_TO_39[phone]
        elif phone in PHONES_39:
            folded = phone
        else:
            raise TimitError(f"{where}: {phone!r} is not a TIMIT phone (61-phone set)")
        if folded is not None:
            out.append(folded)
    return out


def fold39_text(in_path: str | Path, out_path: str | Path) -> int:
    """Fold a Kaldi ``text`` file of 61-phone transcripts to 39 classes; utterances written."""
    lines = read_kaldi_lines(in_path, allow_empty_value=True)
    out = []
    for line in lines:
        phones = fold39(line.value.split(), f"{in_path}:{line.lineno}")
        out.append(f"{line.key} {' '.join(phones)}".rstrip() + "\n")
    atomic_write_text(out_path, "".join(out))
    return len(out)


@dataclass(frozen=True)
class Recording:
    split: str  # train or test (the corpus directory)
    region: str  # DR1..DR8
    speaker: str  # lower case, e.g. fcjf0
    sentence: str  # lower case, e.g. si1027
    wav: Path

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}_{self.sentence}"


def _child(directory: Path, name: str) -> Path | None:
    """``directory/name`` matched case-insensitively (TIMIT ships upper- or lower-case)."""
    for entry in directory.iterdir():
        if entry.name.lower() == name.lower():
            return entry
    return None


def scan(corpus_dir: str | Path) -> list[Recording]:
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise TimitError(f"{corpus_dir}: TIMIT directory not found (pass --corpus-dir)")
    root = corpus_dir
    if _child(root, "TRAIN") is None and _child(root, "TIMIT") is not None:
        root = _child(root, "TIMIT")  # the LDC disc holds TIMIT/TRAIN, TIMIT/TEST
    recordings = []
    for split in ("train", "test"):
        split_dir = _child(root, split)
        if split_dir is None or not split_dir.is_dir():
            raise TimitError(f"{root}: no {split.upper()}/ directory; pass the directory that "
                             "holds TIMIT's TRAIN/ and TEST/")
        for region in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            for speaker in sorted(p for p in region.iterdir() if p.is_dir()):
                for wav in sorted(speaker.iterdir()):
                    match = WAV_RE.match(wav.name)
                    if match:
                        recordings.append(Recording(split, region.name.upper(),
                                                    speaker.name.lower(),
                                                    match.group(1).lower(), wav))
    if not recordings:
        raise TimitError(f"{root}: no SA/SI/SX .WAV files under TRAIN/ and TEST/")
    return recordings


def _annotation(wav: Path, ext: str) -> Path:
    for candidate in (wav.with_suffix(ext.upper()), wav.with_suffix(ext.lower())):
        if candidate.is_file():
            return candidate
    raise TimitError(f"{wav}: no {ext.upper()} file beside it (TIMIT has .PHN, .WRD, .TXT)")


def read_phn(path: Path) -> list[str]:
    """The phones of a ``.PHN`` file (``start end phone`` per line, samples)."""
    phones = []
    for lineno, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise TimitError(f"{path}:{lineno}: expected 'start end phone', got {line!r}")
        if fields[2] not in FOLD_61_TO_39:
            raise TimitError(f"{path}:{lineno}: {fields[2]!r} is not one of TIMIT's 61 phones")
        phones.append(fields[2])
    if not phones:
        raise TimitError(f"{path}: no phones")
    return phones


def read_txt(path: Path) -> str:
    """The words of a ``.TXT`` file (``start end The sentence.``), upper case, no punctuation
    except apostrophes."""
    fields = path.read_text(encoding="ascii", errors="replace").split(maxsplit=2)
    if len(fields) < 3 or not fields[0].isdigit() or not fields[1].isdigit():
        raise TimitError(f"{path}:1: expected 'start end sentence'")
    return " ".join(re.sub(r"[^A-Z' ]", " ", fields[2].upper()).split())


def select(recordings: list[Recording]) -> dict[str, list[Recording]]:
    """The train / dev / core-test split; SA sentences are never used."""
    dev, core = set(DEV_SPEAKERS), set(CORE_TEST_SPEAKERS)
    sets: dict[str, list[Recording]] = {"train": [], "dev": [], "test": []}
    for rec in recordings:
        if rec.sentence.startswith("sa"):
            continue
        if rec.split == "train":
            sets["train"].append(rec)
        elif rec.speaker in dev:
            sets["dev"].append(rec)
        elif rec.speaker in core:
            sets["test"].append(rec)
    for name, wanted in (("dev", DEV_SPEAKERS), ("test", CORE_TEST_SPEAKERS)):
        found = {r.speaker for r in sets[name]}
        missing = [s for s in wanted if s not in found]
        if missing:
            raise TimitError(f"TEST/: {len(missing)} speakers of the {name} set are missing "
                             f"(first: {missing[0]}); is this the complete TIMIT corpus?")
    return sets


def prepare(corpus_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write ``out_dir/{train,dev,test}`` (``text``: 61 phones; ``text.words``: words)."""
    sets = select(scan(corpus_dir))
    out_dir = Path(out_dir)
    written = {}
    for name, recs in sets.items():
        utts, words = [], []
        for rec in recs:
            phones = read_phn(_annotation(rec.wav, ".PHN"))
            utts.append(Utterance(rec.utt_id, str(rec.wav.resolve()), " ".join(phones), rec.speaker))
            words.append(f"{rec.utt_id} {read_txt(_annotation(rec.wav, '.TXT'))}\n")
        data = write_data_dir(out_dir / name, utts)
        atomic_write_text(data.path / "text.words", "".join(sorted(words, key=lambda w: w.split()[0].encode())))
        speakers = len({r.speaker for r in recs})
        expected = STANDARD_SIZES[name]
        if (speakers, len(recs)) != expected:
            log.warning("%s: %d speakers, %d utterances (standard: %d, %d)", name, speakers,
                        len(recs), *expected)
        written[name] = data.path
    return written


# --- a fabricated corpus in TIMIT's layout, for tests and smoke runs ----------------------

SPHERE_HEADER_BYTES = 1024


def write_sphere(path: Path, samples: np.ndarray, utterance_id: str, sample_rate: int = 16000) -> None:
    """16-bit little-endian PCM in a NIST SPHERE file with TIMIT's header fields."""
    pcm = np.asarray(samples, dtype="<i2")
    fields = [
        "database_id -s5 TIMIT", "database_version -s3 1.0",
        f"utterance_id -s{len(utterance_id)} {utterance_id}", "channel_count -i 1",
        f"sample_count -i {len(pcm)}", f"sample_rate -i {sample_rate}",
        f"sample_min -i {int(pcm.min())}", f"sample_max -i {int(pcm.max())}",
        "sample_n_bytes -i 2", "sample_byte_format -s2 01", "sample_sig_bits -i 16", "end_head",
    ]
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode("ascii")
    header = header.ljust(SPHERE_HEADER_BYTES, b" ")
    atomic_write(path, lambda handle: handle.write(header + pcm.tobytes()))


FAKE_WORDS = {  # word -> 61-set phones; a made-up pronunciation dictionary for fabrication
    "she": ["sh", "iy"], "had": ["hv", "ae", "dcl", "d"], "your": ["y", "axr"],
    "dark": ["dcl", "d", "aa", "r", "kcl", "k"], "suit": ["s", "ux", "tcl", "t"],
    "in": ["ix", "n"], "greasy": ["gcl", "g", "r", "iy", "s", "iy"],
    "wash": ["w", "ao", "sh"], "water": ["w", "ao", "dx", "axr"], "all": ["ao", "l"],
    "year": ["y", "ih", "r"], "don't": ["dcl", "d", "ow", "n", "q"],
    "ask": ["ae", "s", "kcl", "k"], "me": ["m", "iy"], "to": ["tcl", "t", "ux"],
    "carry": ["kcl", "k", "eh", "r", "iy"], "an": ["ax", "n"], "oily": ["oy", "l", "iy"],
    "rag": ["r", "ae", "gcl", "g"], "like": ["l", "ay", "kcl", "k"], "that": ["dh", "ae", "tcl", "t"],
}


def fabricate(out_dir: str | Path, train_speakers: int = 8, utts_per_speaker: int = 2,
              seed: int = 0) -> Path:
    """A tiny corpus in TIMIT's exact layout (``TRAIN/DR1/FCJF0/SA1.WAV`` NIST SPHERE with
    ``.PHN``, ``.WRD``, ``.TXT``): SA1 and SA2 for every speaker (which data prep must drop),
    ``utts_per_speaker`` SI/SX sentences, the full dev and core-test speaker lists. The audio
    is one tone per phone (frequency by phone), so the labels are learnable."""
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    words = sorted(FAKE_WORDS)
    train = [f"{'fm'[i % 2]}fak{i}" for i in range(train_speakers)]
    test = DEV_SPEAKERS + CORE_TEST_SPEAKERS
    for split, speakers in (("TRAIN", train), ("TEST", test)):
        for index, speaker in enumerate(speakers):
            region = f"DR{index % 8 + 1}"
            folder = out_dir / split / region / speaker.upper()
            folder.mkdir(parents=True, exist_ok=True)
            names = ["SA1", "SA2"] + [f"S{'IX'[k % 2]}{100 + 7 * index + k}" for k in range(utts_per_speaker)]
            for name in names:
                sentence = list(rng.choice(words, size=int(rng.integers(2, 5)), replace=False))
                _fabricate_utterance(folder / name, sentence, f"{speaker[1:]}_{name.lower()}", rng)
    return out_dir


def _fabricate_utterance(stem: Path, sentence: list[str], utt_id: str, rng: np.random.Generator) -> None:
    rate, phone_len = 16000, 1200  # 75 ms per phone
    phn, wrd = ["0 2400 h#"], []
    pieces = [np.zeros(2400)]
    position = 2400
    for word in sentence:
        start = position
        for phone in FAKE_WORDS[word]:
            frequency = 200.0 + 60.0 * PHONES_61.index(phone)
            t = np.arange(phone_len) / rate
            pieces.append(0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(phone_len))
            phn.append(f"{position} {position + phone_len} {phone}")
            position += phone_len
        wrd.append(f"{start} {position} {word}")
    pieces.append(np.zeros(2400))
    phn.append(f"{position} {position + 2400} h#")
    position += 2400
    samples = np.round(np.concatenate(pieces) * 32767).astype(np.int16)
    write_sphere(stem.with_suffix(".WAV"), samples, utt_id)
    atomic_write_text(stem.with_suffix(".PHN"), "\n".join(phn) + "\n")
    atomic_write_text(stem.with_suffix(".WRD"), "\n".join(wrd) + "\n")
    text = " ".join(sentence).capitalize() + "."
    atomic_write_text(stem.with_suffix(".TXT"), f"0 {position} {text}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.timit",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("prepare", help="TIMIT -> data/{train,dev,test}")
    p.add_argument("--corpus-dir", required=True, help="directory holding TRAIN/ and TEST/")
    p.add_argument("--out", required=True, help="where to write the data dirs")
    p = sub.add_parser("fold39", help="fold 61-phone Kaldi text files to 39 classes")
    p.add_argument("files", nargs="+", metavar="IN OUT", help="pairs of input and output files")
    p = sub.add_parser("fabricate", help="write a tiny corpus in TIMIT's layout (tests)")
    p.add_argument("--out", required=True)
    p.add_argument("--train-speakers", type=int, default=8)
    p.add_argument("--utts-per-speaker", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        if args.action == "prepare":
            for name, path in prepare(args.corpus_dir, args.out).items():
                print(f"{name}: {path}")
        elif args.action == "fold39":
            if len(args.files) % 2:
                parser.error("fold39 takes pairs of files: IN OUT [IN OUT ...]")
            for source, target in zip(args.files[::2], args.files[1::2], strict=True):
                fold39_text(source, target)
        else:
            print(fabricate(args.out, args.train_speakers, args.utts_per_speaker))
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
