"""asr.corpora.an4: AN4 data preparation on fabricated corpora in AN4's layout (WAV, NIST
SPHERE and raw big-endian audio), the download path, and the real corpus when present."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.corpora import an4
from asr.data.datadir import read_data_dir
from asr.data.tables import read_kaldi_map
from asr.data.validate import has_errors, validate_data_dir
from asr.download import DownloadError
from asr.errors import AsrError, DataDirError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

RATE = 16000
# speaker -> [(corpus id, words)]: train speakers of both genders, one test speaker. Every
# speaker says every word, so that any dev draw leaves train with every character.
TRAIN = {
    "fabc": [("an1-fabc-b", "YES STOP"), ("cen1-fabc-b", "GO NO A B")],
    "fdef": [("an2-fdef-b", "NO STOP"), ("cen2-fdef-b", "B A YES GO")],
    "mghi": [("an3-mghi-b", "STOP GO"), ("cen3-mghi-b", "YES NO B A")],
    "mjkl": [("an4-mjkl-b", "GO B STOP"), ("cen4-mjkl-b", "A YES NO")],
    "mmno": [("an5-mmno-b", "STOP YES"), ("cen5-mmno-b", "NO GO A B")],
}
TEST = {"mpqr": [("an6-mpqr-b", "GO YES"), ("cen6-mpqr-b", "A B STOP")]}
DIC = "A AH\nA(2) EY\nB B IY\nGO G OW\nNO N OW\nSTOP S T AA P\nYES Y EH S\n"


def signal(seed: int, seconds: float = 1.0) -> np.ndarray:
    """A 16-bit-exact float signal: a tone whose pitch depends on ``seed``, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    x = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    return (np.round(x * 32767) / 32768).astype(np.float32)


def make_an4(root: Path, audio: str = "wav", fillers: bool = True) -> dict[str, np.ndarray]:
    """Write a tiny AN4 corpus under ``root`` (audio as .wav, .sph or .raw); returns the
    samples of each corpus id."""
    samples: dict[str, np.ndarray] = {}
    (root / "etc").mkdir(parents=True)
    for split, top, speakers in (("train", "an4_clstk", TRAIN), ("test", "an4test_clstk", TEST)):
        fileids, lines = [], []
        for speaker, utts in speakers.items():
            for corpus_id, words in utts:
                x = signal(len(samples))
                samples[corpus_id] = x
                stem = root / "wav" / top / speaker / corpus_id
                stem.parent.mkdir(parents=True, exist_ok=True)
                if audio == "wav":
                    sf.write(stem.with_suffix(".wav"), x, RATE, subtype="PCM_16")
                elif audio == "sph":
                    sf.write(stem.with_suffix(".sph"), x, RATE, format="NIST", subtype="PCM_16")
                else:  # the CMU an4_raw.bigendian layout: headerless 16-bit big-endian
                    stem.with_suffix(".raw").write_bytes((x * 32768).astype(">i2").tobytes())
                fileids.append(f"{top}/{speaker}/{corpus_id}")
                # The training transcription has <s> ... </s>, the test one not (as in AN4).
                text = f"<s> {words} </s>" if fillers and split == "train" else words
                lines.append(f"{text} ({corpus_id})")
        (root / "etc" / f"an4_{split}.fileids").write_text("\n".join(fileids) + "\n")
        (root / "etc" / f"an4_{split}.transcription").write_text("\n".join(lines) + "\n")
    (root / "etc" / "an4.dic").write_text(DIC)
    (root / "LICENSE").write_text("Copyright (c) 1991-2005 Carnegie Mellon University.\n")
    return samples


@pytest.mark.parametrize("audio", ["wav", "sph", "raw"])
def test_prepare_each_audio_format(tmp_path: Path, audio: str) -> None:
    samples = make_an4(tmp_path / "an4", audio)
    paths = an4.prepare(tmp_path / "an4", tmp_path / "data", num_dev_speakers=2)
    for name in ("train", "dev", "test"):
        problems = validate_data_dir(paths[name], check_audio=True)
        assert not has_errors(problems), [str(p) for p in problems]
    train, dev, test = (read_data_dir(paths[n]) for n in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (6, 4, 2)
    expected = {f"{spk}-{cid}": words for spk, utts in (TRAIN | TEST).items() for cid, words in utts}
    got = {u.utt_id: u.text for u in train.utterances + dev.utterances + test.utterances}
    assert got == expected  # fillers dropped, Kaldi ids prefixed with the speaker
    for utt in train.utterances + dev.utterances + test.utterances:
        assert utt.utt_id.startswith(utt.speaker + "-")
        wav = Path(utt.wav)
        # .wav and .sph are read in place; raw PCM is converted to WAV under data/wav.
        if audio == "raw":
            assert wav.parent == (tmp_path / "data" / "wav").resolve() and wav.suffix == ".wav"
        else:
            assert wav.suffix == f".{audio}" and wav.is_relative_to((tmp_path / "an4").resolve())
        x, rate = sf.read(wav, dtype="float32")
        assert rate == RATE
        np.testing.assert_array_equal(x, samples[utt.utt_id.split("-", 1)[1]])
    # Dev is whole speakers: one of each gender here (2 of 5, 2 female and 3 male).
    dev_speakers = {u.speaker for u in dev.utterances}
    assert len(dev_speakers) == 2 and {s[0] for s in dev_speakers} == {"f", "m"}
    assert not dev_speakers & {u.speaker for u in train.utterances}
    lexicon = (tmp_path / "data" / "local" / "dict" / "lexicon.txt").read_text().splitlines()
    assert lexicon[:2] == ["A AH", "A EY"] and "STOP S T AA P" in lexicon
    train_lexicon = (tmp_path / "data" / "local" / "dict" / "lexicon_train.txt").read_text()
    assert train_lexicon.splitlines()[:2] == ["A EY", "B B IY"]  # the spelled letter A
    words = (tmp_path / "data" / "local" / "dict" / "words.txt").read_text().split()
    assert words == ["A", "B", "GO", "NO", "STOP", "YES"]
    assert "Carnegie Mellon" in (tmp_path / "data" / "local" / "LICENSE").read_text()


def test_prepare_finds_the_tarball_root_and_checks_counts(tmp_path: Path) -> None:
    make_an4(tmp_path / "corpus" / "an4", "sph", fillers=False)
    paths = an4.prepare(tmp_path / "corpus", tmp_path / "data", num_dev_speakers=0)
    assert "dev" not in paths and len(read_kaldi_map(paths["train"] / "text")) == 10
    with pytest.raises(AsrError, match=r"an4_train.fileids: 10 utterances, AN4 has 948"):
        an4.prepare(tmp_path / "corpus", tmp_path / "data2", strict_counts=True)


def test_transcription_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.transcription"
    path.write_text("<s> YES </s> (a-b)\n\nNO (c)\n")
    assert an4.read_transcription(path) == {"a-b": "YES", "c": "NO"}
    path.write_text("YES (a)\nNO without id\n")
    with pytest.raises(DataDirError, match=r"t.transcription:2: expected 'WORDS \(utterance-id\)'"):
        an4.read_transcription(path)
    path.write_text("YES (a)\nNO (a)\n")
    with pytest.raises(DataDirError, match=r":2: utterance 'a' appears twice"):
        an4.read_transcription(path)
    path.write_text("<s> </s> (a)\n")
    with pytest.raises(DataDirError, match=r":1: utterance 'a' has no words"):
        an4.read_transcription(path)


def test_missing_audio_and_transcript_are_named(tmp_path: Path) -> None:
    root = tmp_path / "an4"
    make_an4(root)
    (root / "wav" / "an4_clstk" / "fabc" / "an1-fabc-b.wav").unlink()
    with pytest.raises(AsrError, match=r"an4_clstk/fabc/an1-fabc-b: no audio \(.wav, .sph, .raw\)"):
        an4.prepare(root, tmp_path / "data")
    root2 = tmp_path / "b" / "an4"
    make_an4(root2)
    with open(root2 / "etc" / "an4_test.fileids", "a") as handle:
        handle.write("an4test_clstk/mpqr/an9-mpqr-b\n")
    with pytest.raises(DataDirError, match=r"an4_test.fileids:3: 'an9-mpqr-b' has no line"):
        an4.prepare(root2, tmp_path / "data")
    with pytest.raises(AsrError, match="not an AN4 corpus"):
        an4.find_root(tmp_path / "nowhere")


def test_dictionary_variants(tmp_path: Path) -> None:
    path = tmp_path / "an4.dic"
    path.write_text("A AH\nA(2) EY\nTWO T UW\n")
    assert an4.read_dictionary(path) == {"A": [["AH"], ["EY"]], "TWO": [["T", "UW"]]}
    path.write_text("A AH\nB\n")
    with pytest.raises(DataDirError, match=r"an4.dic:2: 'B' has no phones"):
        an4.read_dictionary(path)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12), st.integers(0, 12), st.integers(0, 24), st.integers(0, 1000)
)
def test_split_dev_holds_out_whole_speakers(females: int, males: int, num: int, seed: int) -> None:
    speakers = [f"f{i:02d}" for i in range(females)] + [f"m{i:02d}" for i in range(males)]
    utts = [an4.An4Utterance(f"u{k}-{s}", s, Path("x.wav"), "A") for s in speakers for k in range(2)]
    if num >= len(speakers):
        with pytest.raises(AsrError, match="hold out fewer"):
            an4.split_dev(utts, num, seed)
        return
    train, dev = an4.split_dev(utts, num, seed)
    dev_spk, train_spk = {u.speaker for u in dev}, {u.speaker for u in train}
    assert len(dev_spk) == num and not dev_spk & train_spk
    assert dev_spk | train_spk == set(speakers) and len(train) + len(dev) == len(utts)
    # Genders in proportion (within one speaker), and the draw is reproducible.
    assert abs(sum(s[0] == "f" for s in dev_spk) - num * females / len(speakers)) <= 1
    assert an4.split_dev(utts, num, seed) == (train, dev)


def test_fetch_verifies_and_unpacks(tmp_path: Path) -> None:
    make_an4(tmp_path / "src" / "an4", "sph")
    archive = tmp_path / "an4_sphere.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "an4", arcname="an4")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = an4.fetch(tmp_path / "dl", archive.as_uri(), digest)
    assert root == tmp_path / "dl" / "an4" and (root / "etc" / "an4.dic").is_file()
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        an4.fetch(tmp_path / "dl2", archive.as_uri(), "0" * 64)
    assert an4.main(["--corpus-dir", str(tmp_path / "dl3"), "--out", str(tmp_path / "d"),
                     "--download", "--url", archive.as_uri(), "--sha256", digest, "--dev-speakers", "1"]) == 0
    assert len(read_kaldi_map(tmp_path / "d" / "test" / "text")) == 2


def test_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert an4.main(["--corpus-dir", str(tmp_path / "none"), "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "not an AN4 corpus" in err[0]


@pytest.mark.skipif(not (SHARED_DATA / "an4" / "etc").is_dir(), reason="AN4 not present")
def test_real_corpus(tmp_path: Path) -> None:
    paths = an4.prepare(SHARED_DATA / "an4", tmp_path / "data", strict_counts=True)
    counts = {n: len(read_kaldi_map(paths[n] / "text")) for n in ("train", "dev", "test")}
    assert counts == {"train": 849, "dev": 99, "test": 130}
    test_words = sum(len(t.split()) for t in read_kaldi_map(paths["test"] / "text").values())
    assert test_words == 773  # the figure every published AN4 result is measured on
    for name in ("train", "dev", "test"):
        assert not has_errors(validate_data_dir(paths[name]))
