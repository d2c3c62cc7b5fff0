"""Resumable downloads verified by SHA-256, and safe archive extraction.

Nothing else in the toolkit touches the network: corpora are fetched only by an explicit
download stage of a recipe.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from asr.errors import AsrError

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(AsrError):
    """A download failed or its checksum did not match."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int):
    """Open ``url`` positioned at byte ``offset``; returns (stream, resumed?)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        handle = open(urllib.request.url2pathname(parsed.path), "rb")  # noqa: SIM115
        handle.seek(offset)
        return handle, True
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: unsupported URL scheme '{parsed.scheme}'")
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - scheme checked above
    return response, offset > 0 and response.status == 206


def download(url: str, dest: str | Path, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial ``dest.part``.

    With ``sha256`` the file is verified before it is moved into place; on a mismatch the file
    is deleted and :class:`DownloadError` says so. An existing ``dest`` with the right checksum
    is reused without any network access.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if sha256 is None or sha256_file(dest) == sha256:
            log.info("%s: already downloaded", dest)
            return dest
        log.warning("%s: checksum mismatch, downloading again", dest)
        dest.unlink()
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    try:
        stream, resumed = _open(url, offset)
    except OSError as exc:
        raise DownloadError(f"{url}: cannot download ({exc}); place a local copy and pass --corpus-dir") from None
    if offset and not resumed:
        log.info("%s: server does not support resuming, starting again", url)
        offset = 0
    log.info("downloading %s -> %s%s", url, dest, f" (resuming at {offset} bytes)" if offset else "")
    with stream, open(part, "ab" if offset else "wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()
            raise DownloadError(
                f"{url}: SHA-256 mismatch (expected {sha256}, got {actual}); the file was deleted"
            )
    part.replace(dest)
    return dest


def extract_tar(archive: str | Path, dest: str | Path) -> Path:
    """Extract a tar archive inside ``dest`` with tarfile's 'data' filter.

    The filter strips leading '/' from member names and refuses '..' escapes, links that point
    outside ``dest``, and device files, so a hostile archive cannot write elsewhere."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot extract ({exc})") from None
    return dest
