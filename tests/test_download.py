"""asr.download: file:// downloads, resume, SHA-256 checks, safe tar extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from asr.download import DownloadError, download, extract_tar, sha256_file
from asr.errors import AsrError

PAYLOAD = bytes(range(256)) * 41 + b"tail"  # 10,500 bytes, not a multiple of anything


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "server" / "corpus.tar.gz"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sha256_file(source: Path) -> None:
    assert sha256_file(source) == digest(PAYLOAD)


def test_file_url_with_checksum(tmp_path: Path, source: Path) -> None:
    dest = tmp_path / "downloads" / "corpus.tar.gz"
    assert download(source.as_uri(), dest, sha256=digest(PAYLOAD)) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("corpus.tar.gz.part").exists()


def test_resume_from_partial_file(tmp_path: Path, source: Path) -> None:
    dest = tmp_path / "corpus.tar.gz"
    half = len(PAYLOAD) // 2
    dest.with_name(dest.name + ".part").write_bytes(PAYLOAD[:half])
    download(source.as_uri(), dest, sha256=digest(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name(dest.name + ".part").exists()


def test_resume_really_starts_at_the_offset(tmp_path: Path, source: Path) -> None:
    """The bytes already in ``.part`` are kept, not fetched again: a marker prefix survives."""
    dest = tmp_path / "corpus.tar.gz"
    marker = b"M" * 100
    dest.with_name(dest.name + ".part").write_bytes(marker)
    download(source.as_uri(), dest)
    assert dest.read_bytes() == marker + PAYLOAD[100:]


def test_checksum_mismatch_deletes_and_raises(tmp_path: Path, source: Path) -> None:
    dest = tmp_path / "corpus.tar.gz"
    wrong = "0" * 64
    with pytest.raises(DownloadError, match="SHA-256 mismatch") as info:
        download(source.as_uri(), dest, sha256=wrong)
    assert wrong in str(info.value) and digest(PAYLOAD) in str(info.value)
    assert isinstance(info.value, AsrError)
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".part").exists()


def test_existing_file_reused_or_replaced(tmp_path: Path, source: Path) -> None:
    dest = tmp_path / "corpus.tar.gz"
    dest.write_bytes(PAYLOAD)
    # A good existing copy is reused without touching the URL (which does not exist).
    missing_url = (tmp_path / "nowhere.tar.gz").as_uri()
    assert download(missing_url, dest, sha256=digest(PAYLOAD)) == dest
    # A stale copy is downloaded again.
    dest.write_bytes(b"stale")
    download(source.as_uri(), dest, sha256=digest(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD


def test_unreachable_and_unsupported_urls(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cannot download"):
        download((tmp_path / "nowhere").as_uri(), tmp_path / "x")
    with pytest.raises(DownloadError, match="unsupported URL scheme 'ftp'"):
        download("ftp://example.org/x.tar.gz", tmp_path / "y")


def _tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def test_extract_tar(tmp_path: Path) -> None:
    archive = _tar_with(
        tmp_path / "ok.tar.gz",
        [
            (tarfile.TarInfo("fsdd/recordings/0_a_0.wav"), b"RIFF"),
            (tarfile.TarInfo("fsdd/README.md"), b"hi"),
        ],
    )
    out = extract_tar(archive, tmp_path / "out")
    assert (out / "fsdd" / "recordings" / "0_a_0.wav").read_bytes() == b"RIFF"
    assert (out / "fsdd" / "README.md").read_text() == "hi"


def test_extract_tar_refuses_parent_paths(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", [(tarfile.TarInfo("../evil.txt"), b"pwned")])
    dest = tmp_path / "sub" / "out"
    with pytest.raises(DownloadError, match="cannot extract") as info:
        extract_tar(archive, dest)
    assert str(archive) in str(info.value)
    assert not (tmp_path / "sub" / "evil.txt").exists()


def test_extract_tar_refuses_links_outside(tmp_path: Path) -> None:
    link = tarfile.TarInfo("data/link")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../outside"
    archive = _tar_with(tmp_path / "link.tar.gz", [(link, None)])
    with pytest.raises(DownloadError, match="cannot extract"):
        extract_tar(archive, tmp_path / "out")


def test_extract_tar_absolute_path_stays_inside(tmp_path: Path) -> None:
    target = tmp_path / "abs-target.txt"
    archive = _tar_with(tmp_path / "abs.tar.gz", [(tarfile.TarInfo(str(target)), b"x")])
    out = tmp_path / "out"
    extract_tar(archive, out)
    assert not target.exists()
    assert (out / str(target).lstrip("/")).read_bytes() == b"x"


def test_extract_not_a_tar(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not an archive at all")
    with pytest.raises(DownloadError, match="bogus.tar.gz: cannot extract"):
        extract_tar(bogus, tmp_path / "out")
