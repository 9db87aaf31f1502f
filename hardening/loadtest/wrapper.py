"""Hand the SLO file's thresholds to k6 for ANY script, without editing the script.

Thresholds have no CLI flag or environment variable, and a script's own ``options.thresholds``
replaces those of ``--config`` (REFERENCE.md, options precedence). So hardening generates a small
wrapper module that k6 runs instead of the user's script::

    import * as user from "file:///abs/path/user.js";
    export * from "file:///abs/path/user.js";        // setup, teardown, handleSummary, exec functions
    export default user.default;                       // `export *` never re-exports `default`
    export const options = Object.assign({}, user.options, {"thresholds": {...merged...}});

A local ``export const options`` wins over the star re-export. The user's options are spread at run
time, so scenarios, stages, tags, ``summaryTrendStats``… reach k6 exactly as the script wrote them
(``k6 inspect --execution-requirements`` would hand back a normalised copy: derived ``scenarios``,
``systemTags``); only the merged thresholds are embedded, as JSON.

Resolution rules checked on k6 1.1.0 (tests/test_wrapper.py):

- the user's script is imported by its ``file://`` URI: a plain absolute path breaks on ``#``, ``%``
  and the like in a directory name, the URI (percent-encoded by ``Path.as_uri``) does not;
- the user's own relative ``import``s and global ``open()`` calls resolve against the USER's module,
  wherever the wrapper is;
- ``k6/experimental/fs`` ``open()`` resolves against the ENTRY script, i.e. the wrapper: so the
  wrapper is written beside the user's script (a hidden, uniquely named file), unless that folder is
  read-only or hardening's own (the demo's script, package data): then in the run record (``wrapper_dir``);
- ``handleSummary`` file keys are relative to k6's working directory, not to any script.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hardening.errors import ConfigError
from hardening.loadtest.k6 import inspect, parse_duration

Threshold = str | dict[str, Any]
Thresholds = dict[str, list[Threshold]]
Origin = Literal["script", "slo-file", "both"]

_ITEM_KEYS = ("threshold", "abortOnFail", "delayAbortEval")


def script_options(k6_bin: Path, script: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The script's options as ``k6 inspect --execution-requirements`` resolves them (JSON).

    Raises ``ConfigError`` (exit 2) when k6 cannot load the script or rejects its options, such as a
    threshold on an unknown metric: the same script would fail ``k6 run`` with 104 or 107.
    """
    return inspect(k6_bin, script, dict(env or {}))


def normalize_thresholds(raw: Mapping[str, Any] | None, source: str = "thresholds") -> Thresholds:
    """``{key: [item, …]}`` with each item a string or ``{threshold, abortOnFail?, delayAbortEval?}``.

    As strict as k6 about shape (a bare string instead of a list is an error there too); drops
    ``None`` fields (``k6 inspect`` prints ``delayAbortEval: null``) and fields k6 ignores.
    ``source`` names the input in errors.
    """
    out: Thresholds = {}
    for key, value in (raw or {}).items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{source}: threshold key {key!r} must be a metric name such as 'http_req_duration'")
        if not isinstance(value, list):
            raise ConfigError(f"{source}: thresholds of {key!r} must be a list such as ['p(95)<800'], "
                              f"got {type(value).__name__}")
        out[key] = [_normalize_item(item, f"{source}: {key}") for item in value]
    return out


def _normalize_item(item: Any, where: str) -> Threshold:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("threshold"), str):
        return {k: item[k] for k in _ITEM_KEYS if item.get(k) is not None}
    raise ConfigError(f"{where}: {item!r} is not a threshold; use 'p(95)<800' or "
                      "{'threshold': 'p(95)<800', 'abortOnFail': true}")


def _expr(item: Threshold) -> str:
    return item if isinstance(item, str) else item["threshold"]


def _same(a: str, b: str) -> bool:
    """k6 keys results by the exact text; 'p(95)<800' and 'p(95) < 800' are one SLO to a person."""
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def _abort_delay(item: Threshold) -> float | None:
    """Seconds before an ``abortOnFail`` item may abort the run; ``None`` if it never aborts."""
    if isinstance(item, dict) and item.get("abortOnFail"):
        return parse_duration(item.get("delayAbortEval"))
    return None


def _stricter(script_item: Threshold, slo_item: Threshold) -> Threshold:
    """One item for an expression on both sides: the one that aborts (sooner) wins, with the
    script's own text so the user's summary keys do not change."""
    mine, theirs = _abort_delay(script_item), _abort_delay(slo_item)
    if not isinstance(slo_item, dict) or theirs is None or (mine is not None and mine <= theirs):
        return script_item
    return {**slo_item, "threshold": _expr(script_item)}


def merge_thresholds(script_thresholds: Mapping[str, Any] | None,
                     slo_thresholds: Mapping[str, Any] | None) -> tuple[Thresholds, dict[str, Origin]]:
    """Union of both sides, per key (``metric`` or ``metric{tag:value}``), script order first.

    Returns ``(merged, origins)`` where ``origins[key]`` is ``"script"``, ``"slo-file"`` or
    ``"both"``. Items of a key shared by both sides are concatenated; the same expression (ignoring
    spaces) is kept once, with ``abortOnFail`` if either side asked for it.
    """
    script_t = normalize_thresholds(script_thresholds, "script thresholds")
    slo_t = normalize_thresholds(slo_thresholds, "SLO thresholds")
    merged: Thresholds = {key: list(items) for key, items in script_t.items()}
    origins: dict[str, Origin] = dict.fromkeys(script_t, "script")
    for key, items in slo_t.items():
        if key not in merged:
            merged[key], origins[key] = list(items), "slo-file"
            continue
        origins[key] = "both"
        for item in items:
            at = next((i for i, mine in enumerate(merged[key]) if _same(_expr(mine), _expr(item))), None)
            if at is None:
                merged[key].append(item)
            else:
                merged[key][at] = _stricter(merged[key][at], item)
    return merged, origins


def wrapper_source(script: Path, overrides: Mapping[str, Any]) -> str:
    """The wrapper module's text: the user's exports, with ``options`` = user's + ``overrides``."""
    spec = json.dumps(Path(script).resolve().as_uri())
    return (
        f"// Generated by hardening (hardening/loadtest/wrapper.py) for {Path(script).name}; safe to delete.\n"
        f"import * as user from {spec};\n"
        f"export * from {spec};\n"
        "export default user.default;\n"
        f"export const options = Object.assign({{}}, user.options, {json.dumps(dict(overrides), indent=2)});\n"
    )


PACKAGE_DIR = Path(__file__).resolve().parent.parent  # hardening's own files: never written to


def wrapper_dir(script: Path, fallback: Path) -> Path:
    """Where the wrapper of ``script`` goes: beside it, where the script's ``k6/experimental/fs`` paths
    resolve; ``fallback`` (the run record's folder for k6) when that folder is read-only or part of the
    installed hardening package (the demo's script needs no fs path)."""
    folder = Path(script).resolve().parent
    if folder.is_relative_to(PACKAGE_DIR) or not os.access(folder, os.W_OK):
        return fallback
    return folder


def write_wrapper(script: Path, overrides: Mapping[str, Any], dest_dir: Path | None = None) -> Path:
    """Write the wrapper for ``script`` and return its path; the caller deletes it.

    ``overrides`` are top-level options that replace the user's (normally ``{"thresholds": merged}``).
    ``dest_dir`` defaults to the script's own directory, the only place where the script's
    ``k6/experimental/fs`` relative paths still resolve; the file is hidden and uniquely named, so
    concurrent runs do not collide.
    """
    script = Path(script).resolve()
    if not script.is_file():
        raise ConfigError(f"k6 script {script} does not exist")
    directory = Path(dest_dir) if dest_dir is not None else script.parent
    fd, name = tempfile.mkstemp(prefix=f".{script.stem}.", suffix=".hardening.js", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(wrapper_source(script, overrides))
    return Path(name)


@dataclass(frozen=True)
class Wrapped:
    path: Path  # run this with k6 instead of the user's script
    thresholds: Thresholds  # what k6 will enforce
    origins: dict[str, Origin]  # where each threshold key came from


@contextmanager
def wrapped_script(k6_bin: Path, script: Path, slo_thresholds: Mapping[str, Any] | None,
                   env: Mapping[str, str] | None = None, dest_dir: Path | None = None) -> Iterator[Wrapped]:
    """Inspect ``script``, merge its thresholds with the SLO file's, write the wrapper, yield it,
    and delete it afterwards. ``env`` must be what ``k6 run`` will get (options may read ``__ENV``)."""
    options = script_options(k6_bin, script, env)
    merged, origins = merge_thresholds(options.get("thresholds"), slo_thresholds)
    path = write_wrapper(script, {"thresholds": merged}, dest_dir)
    try:
        yield Wrapped(path=path, thresholds=merged, origins=origins)
    finally:
        with suppress(FileNotFoundError):
            path.unlink()
