"""No code runs from data: a source scan of ``asr/`` for unsafe loaders and shells, and
behavioural tests with hostile inputs (pickled weights that run code, YAML tags, archives
that climb out of their directory, commands in ``wav.scp``, downloads that do not match)."""

from __future__ import annotations

import ast
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from asr.cli import main as asr_main
from asr.config import load_config
from asr.data import read_data_dir
from asr.download import DownloadError, download, extract_tar
from asr.errors import AsrError, ConfigError, DataDirError, ModelError
from asr.modeldir import load_model_dir
from asr.train.checkpoint import CheckpointError, load_file, load_weights

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "asr"

# Modules that start programs, each with the reason; every call passes an argument list.
SUBPROCESS_ALLOWED = {
    "asr/audio.py": "ffmpeg for containers libsndfile cannot read",
    "asr/data/wav_audio.py": "wav.scp commands, only when pipes are allowed",
    "asr/lm/kenlm.py": "KenLM's lmplz and build_binary",
    "asr/scoring/sclite.py": "sclite, to check our scorer",
}
# Benchmarks start the programs they compare (and git, for the commit they measured).
SUBPROCESS_ALLOWED_DIRS = ("asr/benchmarks/",)


# -- source scan ------------------------------------------------------------------------------


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def scan_source(source: str, rel: str) -> list[str]:
    """Unsafe patterns in one module, as ``file:line: what``."""
    found = []
    tree = ast.parse(source, rel)
    for node in ast.walk(tree):
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name and name.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve"):
                    found.append(f"{where}: imports {name} (data must never be unpickled)")
        if not isinstance(node, ast.Call):
            continue
        func = _dotted(node.func)
        if func.endswith("torch.load"):
            if not _is_true(_keyword(node, "weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
        if func in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append(f"{where}: {func} (use yaml.safe_load)")
        if _is_true(_keyword(node, "shell")):
            found.append(f"{where}: shell=True")
        if func in ("os.system", "os.popen", "eval", "exec", "compile", "__import__") or func.startswith("os.exec") or func.startswith("os.spawn"):
            found.append(f"{where}: {func}")
        if func.endswith(".extractall") or func.endswith(".extract"):
            filt = _keyword(node, "filter")
            if not (isinstance(filt, ast.Constant) and filt.value == "data"):
                found.append(f"{where}: archive extraction without filter='data'")
        if func.startswith("subprocess."):
            if rel not in SUBPROCESS_ALLOWED and not rel.startswith(SUBPROCESS_ALLOWED_DIRS):
                found.append(f"{where}: {func} in a module not allowed to start programs")
            elif node.args and isinstance(node.args[0], ast.Constant | ast.JoinedStr | ast.BinOp):
                found.append(f"{where}: {func} with a command string (pass an argument list)")
    return found


def _modules() -> list[Path]:
    """Every module of the package, and the Python tools."""
    found = [*PACKAGE.rglob("*.py"), *(ROOT / "tools").glob("*.py")]
    return sorted(p for p in found if "__pycache__" not in p.parts)


def test_source_has_no_unsafe_loaders_or_shells():
    problems = []
    for path in _modules():
        problems += scan_source(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert not problems, "\n".join(problems)
    assert len(_modules()) > 50  # the scan really covered the package


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('m.pt')\n",
    "import torch\ntorch.load('m.pt', weights_only=False)\n",
    "import yaml\nyaml.load(open('c.yaml'), Loader=yaml.Loader)\n",
    "import yaml\nyaml.unsafe_load('a: 1')\n",
    "import subprocess\nsubprocess.run('ls', shell=True)\n",
    "import os\nos.system('ls')\n",
    "import pickle\n",
    "import tarfile\ntarfile.open('a.tar').extractall('x')\n",
    "eval('1+1')\n",
])
def test_the_scan_catches_each_pattern(snippet):
    assert scan_source(snippet, "asr/audio.py"), snippet


def test_subprocess_only_in_allowed_modules_with_argument_lists():
    assert scan_source("import subprocess\nsubprocess.run(['ls'])\n", "asr/model/lstm.py")
    assert scan_source("import subprocess\nsubprocess.run('ls -l')\n", "asr/audio.py")
    assert not scan_source("import subprocess\nsubprocess.run(['ffmpeg', '-i', x])\n", "asr/audio.py")


# -- pickles, YAML tags ------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: what an attacker's 'weights' would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "code ran"))


@pytest.fixture
def model_dir(tmp_path) -> Path:
    from asr.model import build_model
    from asr.modeldir import save_model_dir
    from asr.text import Tokenizer

    config = load_config(overrides=["features.n_mels=8", "model.num_layers=1", "model.hidden_size=4"])
    tokenizer = Tokenizer.build(["ab"], "char")
    model = build_model(config.model, config.features, len(tokenizer))
    return save_model_dir(tmp_path / "model", model, config, tokenizer)


def _hostile_weights(path: Path, sentinel: Path) -> None:
    state = torch.load(path, weights_only=True)
    state["evil"] = _Payload(sentinel)
    torch.save(state, path)


def test_the_payload_really_runs_code_with_an_unsafe_load(model_dir, tmp_path):
    sentinel = tmp_path / "pwned"
    _hostile_weights(model_dir / "model.pt", sentinel)
    torch.load(model_dir / "model.pt", weights_only=False)  # what the toolkit never does
    assert sentinel.read_text() == "code ran"


def test_model_dir_with_code_in_its_weights_is_refused(model_dir, tmp_path, capsys):
    sentinel = tmp_path / "pwned"
    _hostile_weights(model_dir / "model.pt", sentinel)
    with pytest.raises(ModelError, match=r"model\.pt: cannot load weights"):
        load_model_dir(model_dir)
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_weights(model_dir)
    with pytest.raises(CheckpointError):
        load_file(model_dir / "model.pt")
    out = tmp_path / "decode"
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {tmp_path / 'x.wav'}\n")
    code = asr_main.main(["decode", "--model", str(model_dir), "--data", str(data), "--out", str(out),
                          "--device", "cpu"])
    assert code == 1 and "cannot load weights" in capsys.readouterr().err
    assert not sentinel.exists()


def test_yaml_tags_in_configs_are_refused(model_dir, tmp_path):
    sentinel = tmp_path / "pwned"
    tag = f"!!python/object/apply:pathlib.Path.write_text [!!python/object/apply:pathlib.Path ['{sentinel}'], 'x']"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"model:\n  hidden_size: {tag}\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config([evil])
    config = model_dir / "config.yaml"
    config.write_text(config.read_text() + f"evil: {tag}\n")
    with pytest.raises(ModelError, match="config.yaml: unreadable"):
        load_model_dir(model_dir)
    assert not sentinel.exists()
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(f"a: {tag}")


# -- archives ----------------------------------------------------------------------------------


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path


@pytest.mark.parametrize("members,links", [
    ({"model/model.pt": b"w", "../escaped.txt": b"x"}, None),
    ({"model/../../escaped.txt": b"x"}, None),
    ({}, {"model/link": "../../escaped.txt"}),
    ({}, {"model/abs": "/etc/passwd"}),
])
def test_tar_members_outside_the_destination_are_refused(tmp_path, members, links):
    archive = _tar(tmp_path / "hostile.tar.gz", members, links)
    dest = tmp_path / "a" / "b"
    with pytest.raises(DownloadError, match="hostile.tar.gz: cannot extract"):
        extract_tar(archive, dest)
    assert not (tmp_path / "a" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_absolute_member_names_land_inside(tmp_path):
    archive = _tar(tmp_path / "abs.tar.gz", {"/tmp/asr-absolute-test.txt": b"x", "ok/a.txt": b"a"})
    dest = extract_tar(archive, tmp_path / "out")
    assert (dest / "tmp" / "asr-absolute-test.txt").read_bytes() == b"x"
    assert not Path("/tmp/asr-absolute-test.txt").exists()


# -- wav.scp commands --------------------------------------------------------------------------


def test_wav_scp_commands_need_explicit_opt_in(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ASR_ALLOW_PIPES", raising=False)
    sentinel = tmp_path / "pwned"
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 touch {sentinel} && cat x.wav |\n")
    (data / "text").write_text("u1 a\n")
    (data / "utt2spk").write_text("u1 u1\n")
    with pytest.raises(DataDirError, match=r"wav.scp:1: 'u1' is read through a shell command"):
        read_data_dir(data)
    for argv in (["train", "--train", str(data), "--exp-dir", str(tmp_path / "exp")],
                 ["data", "validate", str(data)]):
        asr_main.main(argv)
    assert "commands run only when allowed" in capsys.readouterr().err
    assert not sentinel.exists()
    # With the opt-in the command does run (and fails to give audio): proof the gate is the guard.
    monkeypatch.setenv("ASR_ALLOW_PIPES", "1")
    utt = read_data_dir(data).utterances[0]
    from asr.data.wav_audio import load_utterance_audio

    with pytest.raises(AsrError):
        load_utterance_audio(utt, 16000)
    assert sentinel.exists()


# -- downloads ---------------------------------------------------------------------------------


def test_download_mismatch_deletes_the_file_and_says_so(tmp_path):
    server = tmp_path / "server.bin"
    server.write_bytes(os.urandom(5000))
    dest = tmp_path / "dl" / "corpus.tar.gz"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DownloadError) as info:
        download(server.as_uri(), dest, sha256=wrong)
    assert "SHA-256 mismatch" in str(info.value) and "the file was deleted" in str(info.value)
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()
    # A tampered file already in place is not used: it is fetched again and verified.
    right = hashlib.sha256(server.read_bytes()).hexdigest()
    dest.write_bytes(b"tampered")
    assert download(server.as_uri(), dest, sha256=right).read_bytes() == server.read_bytes()


def test_download_refuses_other_url_schemes(tmp_path):
    for url in ("ftp://example.org/x", "ssh://host/x", "data:text/plain,hello"):
        with pytest.raises(DownloadError, match="unsupported URL scheme"):
            download(url, tmp_path / "x")
