"""What ``hardening report`` checks before any notebook runs, so a bad input fails fast with exit 2 and every
warning reaches the command's own output (not only a page of the report).

- the run record reads (``hardening.record.reader.read_record``);
- the deployment ledger reads (``hardening.deploy.dora.read_ledger``): each skipped line is a warning, a
  ledger that cannot be read or has lines but none usable is a ConfigError;
- the history loads (``hardening.record.reader.load_runs``): each skipped run record is a warning;
- ``--out`` is a folder that exists or can be created, and can be written to.

Warnings are printed as ``warning: …`` (secrets masked) and returned.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TextIO

from hardening.errors import ConfigError
from hardening.masking import mask


def check_out(out: Path) -> None:
    """``out`` is, or can be made, a folder this process can write into; ConfigError (exit 2) otherwise."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder: the reports need a folder (created when missing). "
                          "Choose another --out.")
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"--out {out} cannot be created: {blocker} is a file, not a folder. Choose another --out.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be created ({exc.strerror or exc}). Choose a folder you can write "
                          "to with --out.") from None
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".hardening-write-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out} is not writable ({exc.strerror or exc}). Choose a folder you can write to "
                          "with --out.") from None


def ledger_warnings(ledger: Path) -> list[str]:
    """The warnings of reading ``ledger`` (one per skipped line); ConfigError when it cannot be read."""
    from hardening.deploy.dora import read_ledger
    from hardening.record.reader import RecordWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = read_ledger(ledger)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the deployment ledger {ledger}: {getattr(exc, 'strerror', None) or exc}. "
                              "Pass a ledger.jsonl written by `hardening deploy` with --ledger.") from None
    found = [str(w) for w in df.attrs.get("warnings") or []]
    found += [str(w.message) for w in caught if issubclass(w.category, RecordWarning)]
    found = list(dict.fromkeys(found))  # the same warning both in attrs and issued: once
    if df.empty and found:
        raise ConfigError(f"the deployment ledger {ledger} has no usable line ({len(found)} skipped; first: "
                          f"{found[0]}). Pass a ledger.jsonl written by `hardening deploy` with --ledger.")
    return found


def history_warnings(history: Path) -> list[str]:
    """One warning per run record of ``history`` that cannot be read (the reports skip it)."""
    from hardening.record.reader import RecordWarning, load_runs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_runs(history)
    skipped = df.attrs.get("skipped")
    if isinstance(skipped, list) and all(isinstance(s, (tuple, list)) and len(s) == 2 for s in skipped):
        found = [f"skipped run record {Path(path).name}: {reason}" for path, reason in skipped]
    else:
        found = []
    found += [str(w.message) for w in caught
              if issubclass(w.category, RecordWarning) and str(w.message).startswith("skipped run record")]
    return list(dict.fromkeys(found))


def preflight(run: Path, history: Path | None, out: Path, ledger: Path | None,
              stream: TextIO | None = None) -> list[str]:
    """Every check above, in the order a user fixes things (inputs, then output); returns the warnings after
    printing each as ``warning: …`` to ``stream`` (stderr)."""
    from hardening.record.reader import read_record, resolve_path

    read_record(resolve_path(run))
    found: list[str] = []
    if ledger is not None:
        found += ledger_warnings(Path(ledger))
    if history is not None:
        found += history_warnings(Path(history))
    check_out(Path(os.path.abspath(out)))
    stream = stream or sys.stderr
    for line in found:
        stream.write(f"warning: {mask(line)}\n")
    stream.flush()
    return found
