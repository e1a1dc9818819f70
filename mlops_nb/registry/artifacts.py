"""Content-addressed artifact files: ``artifacts/ab/cdef...`` named by their sha256.

A blob is written to ``artifacts/tmp/`` first, flushed to disk, then renamed into
place, so a crash never leaves a half-written file under a content name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from mlops_nb.errors import IntegrityError, InvalidInputError, NotFoundError

_CHUNK = 1 << 20
_STALE_TMP_S = 3600


def check_artifact_name(name: object) -> str:
    """Artifact names are relative POSIX paths without ``..``; return the normalised name."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"artifact name must be a non-empty string, got {name!r}")
    if "\x00" in name or "\\" in name:
        raise InvalidInputError(f"artifact name {name!r} contains a NUL or backslash: use '/' separated names")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("~"):
        raise InvalidInputError(f"artifact name {name!r} is absolute: give a relative name such as 'plots/roc.png'")
    if ".." in path.parts:
        raise InvalidInputError(f"artifact name {name!r} contains '..': give a name inside the run, such as 'model.pkl'")
    return str(path)


def blob_path(artifacts_dir: Path, sha256: str) -> Path:
    return artifacts_dir / sha256[:2] / sha256[2:]


def put_bytes(artifacts_dir: Path, data: bytes) -> tuple[str, int]:
    """Store ``data``; return its (sha256, size). Identical content is stored once."""
    sha = hashlib.sha256(data).hexdigest()
    final = blob_path(artifacts_dir, sha)
    if not final.exists():
        _write_atomically(artifacts_dir, final, lambda out: out.write(data))
    return sha, len(data)


def put_file(artifacts_dir: Path, source: str | os.PathLike) -> tuple[str, int]:
    """Store a file's content, hashing it while it is copied; return (sha256, size)."""
    source = Path(source)
    if not source.is_file():
        raise NotFoundError(f"artifact file {source} does not exist (or is not a file)")
    digest = hashlib.sha256()
    size = 0

    def copy(out: BinaryIO) -> None:
        nonlocal size
        with open(source, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)

    tmp = _write_to_tmp(artifacts_dir, copy)
    sha = digest.hexdigest()
    final = blob_path(artifacts_dir, sha)
    if final.exists():
        tmp.unlink()
    else:
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp, final)
    return sha, size


def read_verified(artifacts_dir: Path, sha256: str) -> bytes:
    """Read a blob and check it still hashes to ``sha256``."""
    path = blob_path(artifacts_dir, sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"artifact file {path} is missing from the registry folder") from None
    except OSError as exc:  # a folder in its place, no permission
        raise IntegrityError(f"artifact {path} cannot be read ({exc.strerror}); restore the file or log it "
                             "again") from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"artifact {path} was changed on disk: the registry recorded sha256 {sha256[:12]}…, the file "
            f"hashes to {actual[:12]}…; refusing to load it (restore the file or log it again)")
    return data


def clean_stale_tmp(artifacts_dir: Path) -> int:
    """Remove partial uploads that writers left when they died: temp files untouched for an hour whose
    writer (``blob-<pid>@<host>.<random>``) is not alive. A writer on another host sharing the artifact root
    cannot be asked: its file's age tells, as a live writer keeps touching it. Returns how many went."""
    tmp_dir = artifacts_dir / "tmp"
    removed = 0
    if not tmp_dir.is_dir():
        return 0
    cutoff = time.time() - _STALE_TMP_S
    for entry in tmp_dir.iterdir():
        try:
            if entry.lstat().st_mtime < cutoff and not _writer_alive(entry.name):
                entry.unlink()
                removed += 1
        except OSError:
            pass
    return removed


_TMP_NAME = re.compile(r"^blob-(?P<pid>\d+)@(?P<host>.+)\.[^.]+$")
_OLD_TMP_NAME = re.compile(r"^blob-(?P<pid>\d+)-")  # this host's, from before names held the host


def _writer_alive(name: str) -> bool:
    """Whether the writer named in a temp file's name is known to be alive (never for another host's)."""
    from mlops_nb.registry.process import hostname, is_alive

    writer = _TMP_NAME.match(name) or _OLD_TMP_NAME.match(name)
    return bool(writer and is_alive(writer.groupdict().get("host") or hostname(), int(writer["pid"]), None))


def _write_to_tmp(artifacts_dir: Path, write) -> Path:
    tmp_dir = artifacts_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    from mlops_nb.registry.process import hostname

    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=f"blob-{os.getpid()}@{hostname()}.")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _write_atomically(artifacts_dir: Path, final: Path, write) -> None:
    tmp = _write_to_tmp(artifacts_dir, write)
    final.parent.mkdir(exist_ok=True)
    os.replace(tmp, final)


def export_blob(artifacts_dir: Path, sha256: str, destination: str | os.PathLike) -> Path:
    """Copy a blob out of the registry to ``destination``."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(blob_path(artifacts_dir, sha256), destination)
    return destination
