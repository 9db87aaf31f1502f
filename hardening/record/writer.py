"""The one writer of run records: one directory per run under ``data/runs/<run_id>/``, written atomically.

Everything is first written into ``<root>/.tmp-<run_id>/`` (``writer.layout`` names every file);
``finalize()`` writes the record (``layout.run_json``) last and renames the directory into place, so a
directory without the ``.tmp-`` prefix is always complete. Readers ignore ``.tmp-*`` leftovers of a killed
process. The contract of that file is :class:`hardening.record.model.RunRecord`.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from hardening.atomic import write_json
from hardening.errors import ConfigError
from hardening.masking import mask_obj
from hardening.record.layout import RunLayout
from hardening.record.model import RunRecord


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def git_info(cwd: Path | None = None) -> dict[str, str | None]:
    """Commit, branch and actor from CI variables, else from git; ``None`` where unknown."""
    env = os.environ

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() or None if out.returncode == 0 else None

    branch = env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or git("rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": env.get("GITHUB_SHA") or git("rev-parse", "HEAD"),
        "branch": None if branch == "HEAD" else branch,
        "actor": env.get("GITHUB_ACTOR") or env.get("USER"),
    }


def new_run_id(commit: str | None, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    return f"{now:%Y%m%dT%H%M%SZ}-{(commit or 'nogit')[:7]}-{secrets.token_hex(2)}"


class RunRecordWriter:
    """Builds one run record in a temporary directory and publishes it with one rename."""

    def __init__(self, root: Path, run_id: str):
        self.root = Path(root)
        self.run_id = run_id
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.tmp = self.root / f"{RunLayout.TMP_PREFIX}{run_id}"
            self.tmp.mkdir()
            probe = self.tmp / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"cannot write run records under {self.root}: {exc.strerror or exc}. "
                "Choose a writable directory with --out."
            ) from exc
        self.final = self.root / run_id
        self.layout = RunLayout(self.tmp)

    def finalize(self, record: RunRecord) -> Path:
        """Mask, write the record (``layout.run_json``) last, and move the record into place."""
        if record.run_id != self.run_id:
            raise ValueError(f"record {record.run_id} given to the writer of {self.run_id}")
        record.files = [*sorted(p.name for p in self.tmp.iterdir() if not p.name.startswith(".")),
                        RunLayout.RUN_JSON]
        write_json(self.layout.run_json, mask_obj(record.to_dict()))
        os.rename(self.tmp, self.final)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
