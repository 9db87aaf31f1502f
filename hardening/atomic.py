"""One way to write a file atomically: a temporary file beside it, then ``os.replace``.

Readers never see half a file, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest``, on error it is removed.

    For writers that take a path (pyarrow, tarfile, ...). ``mode`` is applied before the rename
    (``mkstemp`` creates files 0600).
    """
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(dest: str | os.PathLike[str], mode: str = "w", perms: int = 0o644,
                encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """``open()`` for writing that publishes the file only when the block succeeds."""
    with atomic_path(dest, perms) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as fh:
        yield fh


def write_text(dest: str | os.PathLike[str], text: str, perms: int = 0o644) -> Path:
    with atomic_open(dest, "w", perms) as fh:
        fh.write(text)
    return Path(dest)


def write_bytes(dest: str | os.PathLike[str], data: bytes, perms: int = 0o644) -> Path:
    with atomic_open(dest, "wb", perms) as fh:
        fh.write(data)
    return Path(dest)


def write_json(dest: str | os.PathLike[str], data: Any, perms: int = 0o644) -> Path:
    """Pretty JSON (``default=str`` for dates and paths), newline-terminated."""
    return write_text(dest, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", perms)
