"""CMU AN4 ("census" database, 1991) -> Kaldi data dirs ``train``, ``dev``, ``test`` and a
pronunciation lexicon.

The corpus layout (the CMU distribution and SphinxTrain's copy alike)::

    etc/an4_{train,test}.fileids         an4_clstk/fash/an251-fash-b        (no extension)
    etc/an4_{train,test}.transcription   <s> YES </s> (an251-fash-b)        (fillers optional)
    etc/an4.dic                          A(2)  EY                           (CMU phones)
    wav/an4_clstk/<spk>/<id>.{wav,sph,raw}     948 training utterances, 74 speakers
    wav/an4test_clstk/<spk>/<id>.{wav,sph,raw} 130 test utterances, 10 speakers

Audio is 16 kHz 16-bit mono: RIFF WAV, NIST SPHERE (both read directly by libsndfile, so
``wav.scp`` points at the corpus files) or headerless big-endian PCM (the CMU
``an4_raw.bigendian`` tarball: converted once to WAV under ``OUT/wav``, since a ``wav.scp``
path carries no sample format). The dev set is whole training speakers held out (both
genders, chosen with a fixed seed), so dev never shares a voice with train.

    python -m asr.corpora.an4 --corpus-dir DIR --out data [--download]
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from asr.audio import load_audio
from asr.data.datadir import write_data_dir
from asr.data.utterance import Utterance
from asr.download import DownloadError, download, extract_tar
from asr.errors import AsrError, DataDirError
from asr.utils import atomic_write, atomic_write_text, setup_logging

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# The CMU distribution in NIST SPHERE (64 MB). The checksum is the one published for the copy
# of this archive that several toolkits mirror (dldata-public.s3.us-east-2.amazonaws.com);
# it could not be checked against the CMU server from the machine this recipe was developed
# on. A mismatch deletes the file and says so; --sha256 '' skips the check.
URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"
ARCHIVE_SHA256 = "a0525579493735d32b60fb6fa5975dd0eaacde087b0a4eeb7f13b7ef33077b12"
SPLITS = {"train": "an4_train", "test": "an4_test"}
EXPECTED_UTTS = {"train": 948, "test": 130}
# Tried in this order for each fileid; .raw is 16-bit big-endian PCM at 16 kHz.
AUDIO_SUFFIXES = (".wav", ".sph", ".raw")
RAW_FORMAT = "s16be:16000"
FILLERS = frozenset({"<s>", "</s>", "<sil>"})
# Pronunciation variants (1-based, as an4.dic numbers them) that the phone system trains on:
# in AN4 "A" is the spelled letter (EY, an4.dic's second entry) and ONE is W AH N.
TRAINING_VARIANT = {"A": 2, "ONE": 2}
DEV_SPEAKERS = 8
DEV_SEED = 4
_TRANSCRIPT_RE = re.compile(r"^(.*?)\s*\(([^()\s]+)\)\s*$")
_DIC_VARIANT_RE = re.compile(r"^(.+?)\(\d+\)$")


@dataclass(frozen=True)
class An4Utterance:
    corpus_id: str  # the corpus's own id, e.g. an251-fash-b
    speaker: str  # the fileid's directory, e.g. fash
    audio: Path
    text: str

    @property
    def utt_id(self) -> str:
        """Kaldi id: the speaker first, so that utterances sort by speaker."""
        return f"{self.speaker}-{self.corpus_id}"


def find_root(corpus_dir: str | Path) -> Path:
    """The directory holding ``etc/`` and ``wav/``: ``corpus_dir`` itself or its ``an4/``
    (where the CMU tarballs unpack)."""
    corpus_dir = Path(corpus_dir)
    for root in (corpus_dir, corpus_dir / "an4"):
        if (root / "etc" / "an4_train.fileids").is_file():
            return root
    raise AsrError(
        f"{corpus_dir}: not an AN4 corpus (no etc/an4_train.fileids here or in an4/); "
        "pass --corpus-dir with the unpacked corpus, or --download"
    )


def read_transcription(path: Path) -> dict[str, str]:
    """``WORDS (utt-id)`` per line -> {utt-id: words}; fillers (``<s>``, ``</s>``,
    ``<sil>``) are dropped."""
    transcripts: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _TRANSCRIPT_RE.match(line)
        if not match:
            raise DataDirError(f"{path}:{lineno}: expected 'WORDS (utterance-id)', got {line!r}")
        words = [w for w in match.group(1).split() if w not in FILLERS]
        utt = match.group(2)
        if not words:
            raise DataDirError(f"{path}:{lineno}: utterance '{utt}' has no words; remove the line")
        if utt in transcripts:
            raise DataDirError(f"{path}:{lineno}: utterance '{utt}' appears twice; keep one line")
        transcripts[utt] = " ".join(words)
    return transcripts


def find_audio(root: Path, fileid: str) -> Path:
    """The audio file of ``fileid`` under ``root/wav``, whichever of the known formats it is."""
    for suffix in AUDIO_SUFFIXES:
        path = root / "wav" / (fileid + suffix)
        if path.is_file():
            return path
    raise AsrError(
        f"{root / 'wav' / fileid}: no audio ({', '.join(AUDIO_SUFFIXES)}); the corpus copy is "
        "incomplete: unpack it again"
    )


def read_split(root: Path, split: str) -> list[An4Utterance]:
    """The utterances of ``split`` (train or test), in the order of its fileids."""
    stem = root / "etc" / SPLITS[split]
    fileids_path = stem.with_suffix(".fileids")
    transcripts = read_transcription(stem.with_suffix(".transcription"))
    utterances = []
    for lineno, line in enumerate(fileids_path.read_text(encoding="utf-8").splitlines(), 1):
        fileid = line.strip()
        if not fileid:
            continue
        parts = fileid.split("/")
        if len(parts) != 3:
            raise DataDirError(f"{fileids_path}:{lineno}: expected 'DIR/SPEAKER/ID', got {fileid!r}")
        _, speaker, corpus_id = parts
        if corpus_id not in transcripts:
            raise DataDirError(
                f"{fileids_path}:{lineno}: '{corpus_id}' has no line in "
                f"{stem.with_suffix('.transcription')}; add it or remove the fileid"
            )
        utterances.append(An4Utterance(corpus_id, speaker, find_audio(root, fileid), transcripts[corpus_id]))
    if not utterances:
        raise DataDirError(f"{fileids_path}: no utterances")
    return utterances


def read_dictionary(path: Path) -> dict[str, list[list[str]]]:
    """``an4.dic`` -> {word: [pronunciation, ...]}; ``WORD(2)`` lines are variants of WORD."""
    lexicon: dict[str, list[list[str]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise DataDirError(f"{path}:{lineno}: '{fields[0]}' has no phones; give it a pronunciation")
        match = _DIC_VARIANT_RE.match(fields[0])
        word = match.group(1) if match else fields[0]
        lexicon.setdefault(word, []).append(fields[1:])
    return lexicon


def split_dev(
    utterances: list[An4Utterance], num_speakers: int = DEV_SPEAKERS, seed: int = DEV_SEED
) -> tuple[list[An4Utterance], list[An4Utterance]]:
    """(train, dev): ``num_speakers`` whole speakers held out, female and male (the first
    letter of an AN4 speaker id) in proportion to their numbers, drawn with ``seed``."""
    speakers = sorted({u.speaker for u in utterances})
    if num_speakers <= 0:
        return utterances, []
    if num_speakers >= len(speakers):
        raise AsrError(
            f"--dev-speakers {num_speakers}: the training set has only {len(speakers)} speakers; "
            "hold out fewer"
        )
    groups: dict[str, list[str]] = {}
    for speaker in speakers:
        groups.setdefault(speaker[0], []).append(speaker)
    rng = random.Random(seed)
    chosen: set[str] = set()
    # Largest remainder apportionment, so that the counts add up to num_speakers exactly.
    shares = {g: num_speakers * len(s) / len(speakers) for g, s in groups.items()}
    counts = {g: int(share) for g, share in shares.items()}
    for g in sorted(groups, key=lambda g: counts[g] - shares[g])[: num_speakers - sum(counts.values())]:
        counts[g] += 1
    for g in sorted(groups):
        chosen.update(rng.sample(groups[g], min(counts[g], len(groups[g]))))
    train = [u for u in utterances if u.speaker not in chosen]
    dev = [u for u in utterances if u.speaker in chosen]
    return train, dev


def _convert_raw(path: Path, dest: Path) -> Path:
    samples, _ = load_audio(path, raw_format=RAW_FORMAT)
    atomic_write(dest, lambda handle: sf.write(handle, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16"))
    return dest


def to_kaldi(utterances: list[An4Utterance], wav_dir: Path) -> list[Utterance]:
    """Kaldi utterances; raw PCM files are converted to WAV under ``wav_dir`` first."""
    result = []
    for utt in utterances:
        audio = utt.audio
        if audio.suffix == ".raw":
            audio = _convert_raw(audio, wav_dir / f"{utt.utt_id}.wav")
        result.append(Utterance(utt.utt_id, str(audio.resolve()), utt.text, utt.speaker))
    return result


def write_lexicon(path: Path, lexicon: dict[str, list[list[str]]]) -> Path:
    """Kaldi ``lexicon.txt``: ``WORD PHONE ...``, one line per pronunciation, sorted."""
    lines = [f"{w} {' '.join(p)}" for w in sorted(lexicon, key=str.encode) for p in lexicon[w]]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def training_lexicon(lexicon: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
    """One pronunciation per word for training targets: the first, or the variant named in
    :data:`TRAINING_VARIANT`."""
    chosen = {}
    for word, prons in lexicon.items():
        index = TRAINING_VARIANT.get(word, 1) - 1
        chosen[word] = [prons[index if index < len(prons) else 0]]
    return chosen


def prepare(
    corpus_dir: str | Path,
    out_dir: str | Path,
    num_dev_speakers: int = DEV_SPEAKERS,
    seed: int = DEV_SEED,
    strict_counts: bool = False,
) -> dict[str, Path]:
    """Write ``OUT/{train,dev,test}`` and, from ``an4.dic``, ``OUT/local/dict/lexicon.txt``
    (every pronunciation), ``lexicon_train.txt`` (one per word: :func:`training_lexicon`) and
    ``words.txt`` (every word once); copy the corpus licence to
    ``OUT/local/LICENSE``. With ``strict_counts`` the corpus must hold AN4's 948 + 130
    utterances. Returns the paths written."""
    root = find_root(corpus_dir)
    out_dir = Path(out_dir)
    splits = {split: read_split(root, split) for split in SPLITS}
    for split, utts in splits.items():
        if len(utts) != EXPECTED_UTTS[split]:
            message = f"{root}/etc/{SPLITS[split]}.fileids: {len(utts)} utterances, AN4 has {EXPECTED_UTTS[split]}"
            if strict_counts:
                raise AsrError(f"{message}; the corpus is incomplete: unpack it again")
            log.warning("%s", message)
    train, dev = split_dev(splits["train"], num_dev_speakers, seed)
    overlap = {u.speaker for u in splits["test"]} & {u.speaker for u in splits["train"]}
    if overlap:
        log.warning("speakers in both train and test: %s", ", ".join(sorted(overlap)))
    paths: dict[str, Path] = {}
    for name, utts in (("train", train), ("dev", dev), ("test", splits["test"])):
        if not utts:
            continue
        paths[name] = write_data_dir(out_dir / name, to_kaldi(utts, out_dir / "wav")).path
        log.info("%s: %d utterances, %d speakers", paths[name], len(utts), len({u.speaker for u in utts}))
    dic = root / "etc" / "an4.dic"
    if dic.is_file():
        lexicon = read_dictionary(dic)
        paths["lexicon"] = write_lexicon(out_dir / "local" / "dict" / "lexicon.txt", lexicon)
        paths["lexicon_train"] = write_lexicon(
            out_dir / "local" / "dict" / "lexicon_train.txt", training_lexicon(lexicon))
        paths["words"] = out_dir / "local" / "dict" / "words.txt"
        atomic_write_text(paths["words"], "".join(f"{w}\n" for w in sorted(lexicon, key=str.encode)))
        missing = sorted({w for u in splits["train"] + splits["test"] for w in u.text.split()} - set(lexicon))
        if missing:
            log.warning("%s: no pronunciation for %d word(s): %s", dic, len(missing), " ".join(missing[:10]))
    else:
        log.warning("%s: no pronunciation dictionary; the phone system cannot be built", dic)
    licence = root / "LICENSE"
    if licence.is_file():
        paths["license"] = out_dir / "local" / "LICENSE"
        atomic_write_text(paths["license"], licence.read_text(encoding="utf-8", errors="replace"))
    return paths


def fetch(dest: str | Path, url: str = URL, archive_sha256: str | None = ARCHIVE_SHA256) -> Path:
    """Download (resuming a partial file) the AN4 tarball into ``dest``, verify it, unpack it
    and return the corpus root."""
    dest = Path(dest)
    archive = download(url, dest / Path(url).name, sha256=archive_sha256 or None)
    extract_tar(archive, dest)
    try:
        return find_root(dest)
    except AsrError:
        raise DownloadError(f"{archive}: no AN4 corpus inside (etc/an4_train.fileids missing)") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asr.corpora.an4", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-dir", required=True, help="AN4 root (holding etc/ and wav/) or its parent")
    parser.add_argument("--out", required=True, help="where to write the data dirs")
    parser.add_argument("--download", action="store_true",
                        help="download and unpack the CMU tarball into --corpus-dir when no corpus is there")
    parser.add_argument("--url", default=URL, help="download URL (file:// works for local mirrors)")
    parser.add_argument("--sha256", default=ARCHIVE_SHA256, help="expected SHA-256 of the archive ('' skips)")
    parser.add_argument("--dev-speakers", type=int, default=DEV_SPEAKERS,
                        help=f"training speakers held out as dev (default {DEV_SPEAKERS})")
    parser.add_argument("--seed", type=int, default=DEV_SEED, help="seed of the dev speaker draw")
    parser.add_argument("--strict-counts", action="store_true", help="require AN4's 948 + 130 utterances")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        corpus: Path = Path(args.corpus_dir)
        if args.download:
            try:
                corpus = find_root(corpus)
            except AsrError:
                corpus = fetch(corpus, args.url, args.sha256)
        paths = prepare(corpus, args.out, args.dev_speakers, args.seed, args.strict_counts)
    except AsrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
