"""Hypothesis fuzzing of every parser with bounded examples: Kaldi data files and directories,
ARPA language models, configs and ``--set`` overrides, model directories, the command line,
and the audio loader with random and truncated bytes. Whatever the input, the only exceptions
that may escape are the documented ones (:class:`asr.errors.AsrError` subclasses, and
``SystemExit`` from argparse for a bad command line)."""

from __future__ import annotations

import functools
import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.errors import AsrError

# The fixtures used inside (monkeypatch, capsys) hold nothing between examples.
QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=QUIET)
FEW = settings(max_examples=50, deadline=None, suppress_health_check=QUIET)

# Characters that matter to Kaldi files: separators, line ends, non-ASCII spaces, quotes,
# shell syntax, '|' (commands), ':' (ark offsets), digits and signs.
SPICY = " \t\r\n\x0b\x0c\x85\xa0\u2028|:;&$`'\"\\-+.eE0123456789aAzZ<>/~#*"
token = st.text(alphabet=st.sampled_from(list("abcXYZ019-_.:/|")) | st.characters(), max_size=12)
line = st.lists(token, min_size=0, max_size=5).map(" ".join)
text_file = st.one_of(
    st.lists(line, max_size=8).map("\n".join),
    st.lists(line, max_size=8).map(lambda lines: "".join(f"{x}\n" for x in lines)),
    st.text(alphabet=st.sampled_from(list(SPICY)) | st.characters(), max_size=200),
)
raw_file = st.one_of(text_file.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=300))


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# -- Kaldi data files and directories ---------------------------------------------------------

KALDI_FILES = ["wav.scp", "segments", "text", "utt2spk", "spk2utt", "spk2gender", "utt2dur",
               "reco2dur", "utt2num_frames", "reco2file_and_channel", "feats.scp", "utt2lang",
               "utt2uniq", "utt2warp", "spk2warp"]


@FUZZ
@given(name=st.sampled_from(KALDI_FILES), data=raw_file)
def test_fuzz_kaldi_file(name, data):
    from asr.data.files import read_file
    from asr.data.tables import read_kaldi_map
    from asr.data.validate import scan_file

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), name, data)
        for parse in (read_file, read_kaldi_map, scan_file):
            try:
                parse(path)
            except AsrError:
                pass


@FUZZ
@given(files=st.dictionaries(st.sampled_from(["wav.scp", "text", "utt2spk", "spk2utt", "segments",
                                               "utt2dur", "reco2dur", "spk2gender"]),
                             raw_file, min_size=1, max_size=5))
def test_fuzz_data_dir(files, monkeypatch):
    from asr.data import read_data_dir
    from asr.data.validate import validate_data_dir

    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)  # never run fuzzed commands
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            _write(Path(tmp), name, data)
        try:
            read_data_dir(tmp, require_text=False)
        except AsrError:
            pass
        validate_data_dir(tmp, allow_pipes=False)  # reports problems, raises nothing


@FEW
@given(files=st.dictionaries(st.sampled_from(["wav.scp", "text", "utt2spk", "spk2utt", "segments"]),
                             raw_file, min_size=1, max_size=5))
def test_fuzz_fix_data_dir(files, monkeypatch):
    from asr.data.fix import fix_data_dir

    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            _write(Path(tmp), name, data)
        try:
            fix_data_dir(tmp, check_audio=True, allow_pipes=False)
        except AsrError:
            pass


@FUZZ
@given(value=st.one_of(
    st.text(max_size=80),
    st.tuples(st.sampled_from(["sox -t wav ", "wav-copy x.ark:12 - | sox -t wav - -t wav - ", ""]),
              st.text(max_size=10), st.sampled_from([" speed ", " "]), st.text(max_size=6),
              st.sampled_from([" |", "|", ""])).map("".join),
))
def test_fuzz_wav_scp_entry(value):
    from asr.data.wavscp import format_wav_entry, parse_wav_entry

    entry = parse_wav_entry(value)  # documented never to fail: anything else is a path
    assert parse_wav_entry(format_wav_entry(entry)) == entry  # written back, read the same


# -- ARPA language models -----------------------------------------------------------------------

ARPA = """\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-1.0 <s> -0.5
-1.0 </s>
-0.5 a -0.3
-0.7 b

\\2-grams:
-0.2 <s> a
-0.4 a b

\\end\\
"""


@st.composite
def mutated_arpa(draw) -> bytes:
    lines = ARPA.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["drop", "dup", "replace", "truncate"]))
        if how == "drop" and len(lines) > 1:
            lines.pop(i)
        elif how == "dup":
            lines.insert(i, lines[i])
        elif how == "replace":
            lines[i] = draw(line) + "\n"
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "".join(lines).encode("utf-8", "surrogatepass")


@FUZZ
@given(data=st.one_of(mutated_arpa(), raw_file))
def test_fuzz_arpa(data):
    from asr.lm import read_arpa

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "lm.arpa", data)
        try:
            lm = read_arpa(path)
        except AsrError:
            return
        assert lm is not None


# -- configs --------------------------------------------------------------------------------------

yaml_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                        st.text(max_size=10))
yaml_value = st.recursive(yaml_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                          max_leaves=8)
section = st.sampled_from(["features", "model", "tokenizer", "train", "augment", "decode", "data", "bogus"])
key = st.sampled_from(["sample_rate", "n_mels", "num_layers", "hidden_size", "lr", "epochs", "type",
                       "cmvn", "device", "max_bad_utts", "frame_stack", "cell", "optimizer", "x"])


@FUZZ
@given(data=st.one_of(
    st.dictionaries(section, st.dictionaries(key, yaml_value, max_size=4) | yaml_value, max_size=4),
    yaml_value,
))
def test_fuzz_config_dict(data):
    import yaml

    from asr.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            load_config([path])
        except AsrError:
            pass


@FUZZ
@given(text=text_file)
def test_fuzz_config_text(text):
    from asr.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config([path])
        except AsrError:
            pass


@FUZZ
@given(override=st.one_of(
    st.tuples(section, key, st.text(max_size=12)).map(lambda t: f"{t[0]}.{t[1]}={t[2]}"),
    st.text(max_size=30),
))
def test_fuzz_set_override(override):
    from asr.config import load_config

    try:
        load_config(overrides=[override])
    except AsrError:
        pass


# -- model directories ------------------------------------------------------------------------------


@functools.cache
def model_files() -> dict[str, bytes]:
    """The three files of a tiny model directory."""
    from asr.config import load_config
    from asr.model import build_model
    from asr.modeldir import save_model_dir
    from asr.text import Tokenizer

    config = load_config(overrides=["features.n_mels=8", "model.num_layers=1", "model.hidden_size=4"])
    tokenizer = Tokenizer.build(["ab"], "char")
    model = build_model(config.model, config.features, len(tokenizer))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model_dir(Path(tmp) / "model", model, config, tokenizer)
        return {name: (path / name).read_bytes() for name in ("model.pt", "config.yaml", "tokens.txt")}


@st.composite
def damaged(draw, original: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if how == "truncate":
        return original[: draw(st.integers(0, len(original)))]
    if how == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "splice":
        i = draw(st.integers(0, len(original)))
        return original[:i] + draw(st.binary(max_size=40)) + original[i:]
    return draw(st.binary(max_size=200))


@FUZZ
@given(data=st.data())
def test_fuzz_model_dir(data):
    from asr.modeldir import load_model_dir

    files = model_files()
    victims = data.draw(st.sets(st.sampled_from(sorted(files)), min_size=1))
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            if name in victims and data.draw(st.booleans(), label=f"delete {name}") and len(victims) == 1:
                continue  # a missing file
            new = data.draw(damaged(content), label=name) if name in victims else content
            _write(Path(tmp), name, new)
        try:
            load_model_dir(tmp)
        except AsrError:
            pass


@FEW
@given(data=st.data())
def test_fuzz_checkpoint_file(data):
    from asr.train.checkpoint import load_weights

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "epoch-1.pt", data.draw(damaged(model_files()["model.pt"])))
        try:
            load_weights(path)
        except AsrError:
            pass


# -- the command line ---------------------------------------------------------------------------------

COMMANDS = ["train", "decode", "score", "models", "data", "lm", "average-checkpoints", "benchmark",
            "export"]
OPTIONS = ["--train", "--dev", "--exp-dir", "--config", "--set", "--model", "--data", "--out",
           "--device", "--batch-size", "--max-bad-utts", "--decoder", "--beam-size", "--nbest",
           "--lm-weight", "--word-score", "--ref", "--hyp", "--order", "-o", "--help-not", "-v",
           "validate", "fix", "split", "list", "build", "--no-resume", "--last", "=", "--"]
argument = st.one_of(st.sampled_from(OPTIONS), st.text(max_size=10),
                     st.integers(-5, 100).map(str), st.floats(allow_nan=True).map(str))


@FUZZ
@given(argv=st.tuples(st.sampled_from(COMMANDS) | st.text(max_size=6), st.lists(argument, max_size=8))
       .map(lambda t: [t[0], *t[1]]))
def test_fuzz_command_line(argv, capsys):
    from asr.cli.main import build_parser

    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage error (2); --help/--version (0)
        assert exc.code in (0, 2)
    capsys.readouterr()


# -- the audio loader ---------------------------------------------------------------------------------


def _encoded(fmt: str, subtype: str | None = None) -> bytes:
    rng = np.random.default_rng(0)
    signal = (0.3 * rng.standard_normal(1600)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, signal, 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


AUDIO = {
    "wav16": _encoded("WAV", "PCM_16"),
    "wavfloat": _encoded("WAV", "FLOAT"),
    "flac": _encoded("FLAC"),
    "ogg": _encoded("OGG", "VORBIS"),
}


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".bin", ""]))
def test_fuzz_audio_loader(data, suffix):
    from asr.audio import audio_duration, load_audio

    original = AUDIO[data.draw(st.sampled_from(sorted(AUDIO)), label="format")]
    content = data.draw(st.one_of(damaged(original), st.binary(max_size=400)), label="bytes")
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), f"x{suffix}", content)
        try:
            samples, rate = load_audio(path, 16000)
        except AsrError:
            pass
        else:
            assert samples.dtype == np.float32 and samples.ndim == 1 and rate == 16000
            assert np.isfinite(samples).all()
        try:
            audio_duration(path)
        except AsrError:
            pass


@FEW
@given(cut=st.integers(0, 4000), which=st.sampled_from(sorted(AUDIO)))
def test_fuzz_truncated_audio_in_training_data(cut, which, monkeypatch):
    """Truncated audio in a data directory is skipped with a count, never a crash."""
    from asr.config import load_config
    from asr.data import read_data_dir
    from asr.data.dataset import load_examples
    from asr.features import build_frontend
    from asr.text import Tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = _write(root, f"a.{which[:3]}", AUDIO[which][:cut])
        (root / "wav.scp").write_text(f"u1 {audio}\n")
        (root / "text").write_text("u1 a b\n")
        (root / "utt2spk").write_text("u1 s\n")
        data = read_data_dir(root)
        config = load_config(overrides=["features.sample_rate=8000", "features.n_mels=8"])
        frontend = build_frontend(config.features)
        examples, report = load_examples(data, frontend, Tokenizer.build(["a b"], "char"))
        assert len(examples) + report.total == 1
        if examples:
            assert torch.isfinite(examples[0].feats).all()
