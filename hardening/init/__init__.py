"""``hardening init``: starter files for a repository that is not this one.

Three files, shipped as package data in ``starter/`` and written under the target folder:

- ``loadtest/slo.json``: the SLO file (k6 thresholds, evaluated again by hardening);
- ``loadtest/script.js``: a k6 script in the shape of ``k6 new``, reading ``BASE_URL`` and ``PROFILE``
  from the environment and its thresholds from the SLO file;
- ``.github/workflows/hardening.yml``: a hardened GitHub Actions workflow (pinned actions, read-only
  token, no persisted credentials) that installs this version of hardening, load-tests and uploads
  the run record and reports.

Nothing is ever overwritten: a file is published with ``os.link`` from a finished temporary file,
which fails when the name exists (a file, a folder or a dangling symlink), so the existing one is
left alone and reported as skipped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hardening import __version__

STARTER = resources.files(__name__) / "starter"
VERSION_TOKEN = "__HARDENING_VERSION__"
# destination (relative to the target folder, POSIX form) -> file in starter/
STARTER_FILES = {
    "loadtest/slo.json": "slo.json",
    "loadtest/script.js": "script.js",
    ".github/workflows/hardening.yml": "hardening.yml",
}
WRITTEN, EXISTS, FAILED = "wrote", "skipped (exists)", "failed"


@dataclass(frozen=True)
class InitResult:
    path: str  # relative to the target folder
    status: str  # WRITTEN, EXISTS or FAILED
    error: str = ""


def starter_text(name: str) -> str:
    """A starter file's text as it will be written (the workflow pins this version of hardening)."""
    return (STARTER / STARTER_FILES[name]).read_text(encoding="utf-8").replace(VERSION_TOKEN, __version__)


def write_starter(target: str | os.PathLike[str] = ".") -> list[InitResult]:
    """Write every starter file that does not exist yet under ``target``; never overwrite anything."""
    root = Path(target)
    return [_create(root, name, starter_text(name)) for name in STARTER_FILES]


def _create(root: Path, name: str, text: str) -> InitResult:
    dest = root / name
    if os.path.lexists(dest):
        return InitResult(name, EXISTS)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a file named like the folder
        return InitResult(name, FAILED, f"cannot create folder {dest.parent}: {exc.strerror or exc}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            _publish(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    except FileExistsError:  # created meanwhile by someone else: still theirs
        return InitResult(name, EXISTS)
    except OSError as exc:
        return InitResult(name, FAILED, f"{exc.strerror or exc}")
    return InitResult(name, WRITTEN)


def _publish(tmp: str, dest: Path) -> None:
    """Give the finished file its name, failing with FileExistsError if the name is taken."""
    try:
        os.link(tmp, dest)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
            raise
        # A file system without hard links: exclusive create, same no-overwrite guarantee.
        with open(dest, "x", encoding="utf-8") as out, open(tmp, encoding="utf-8") as src:
            out.write(src.read())
