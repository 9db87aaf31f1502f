"""Redaction of what Redis hands back as-is: slowlog arguments, client names and addresses.

Default: a slowlog entry keeps the command name, argument count, duration and time; argument values are
dropped. ``include_args=True`` keeps key names (positions from ``COMMAND INFO``) and replaces every other
argument by its length (``<16 bytes>``). Arguments of AUTH, HELLO, MIGRATE, ACL and CONFIG SET are
redacted in every mode. Client names and addresses become salted hashes: stable within one process (or
across processes when ``HARDENING_REDACT_SALT`` is set), not reversible by trying every IP address.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from typing import Any

from hardening.redisobs.connection import CONTAINER_COMMANDS, TOOL_CLIENT_NAME, decode

ALWAYS_REDACTED = frozenset({"auth", "hello", "migrate", "acl", "config|set"})
REDACTED = "<redacted>"
_SALT = (os.environ.get("HARDENING_REDACT_SALT") or secrets.token_hex(16)).encode()
_MORE_BYTES = re.compile(rb"^(?P<head>.*)\.\.\. \((?P<n>\d+) more bytes\)$", re.DOTALL)
_MORE_ARGS = re.compile(r"^\.\.\. \((?P<n>\d+) more arguments\)$")
_SAFE_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


def hash_id(value: str | bytes | None) -> str | None:
    if value in (None, b"", ""):
        return None
    raw = value if isinstance(value, bytes) else value.encode()
    return "h:" + hmac.new(_SALT, raw, hashlib.sha256).hexdigest()[:12]


def command_name(args: list[bytes]) -> tuple[str, str]:
    """(display name, commandstats key): ``("CONFIG SET", "config|set")``; unsafe tokens not shown."""
    if not args:
        return "?", "?"
    name = decode(args[0])
    if not _SAFE_TOKEN.match(name):
        return "<invalid>", "<invalid>"
    low = name.lower()
    if low in CONTAINER_COMMANDS and len(args) > 1:
        sub = decode(args[1])
        if _SAFE_TOKEN.match(sub):
            return f"{name.upper()} {sub.upper()}", f"{low}|{sub.lower()}"
    return name.upper(), low


def _length(arg: bytes) -> str:
    m = _MORE_BYTES.match(arg)
    n = len(m["head"]) + int(m["n"]) if m else len(arg)
    return f"<{n} bytes>"


def arg_count(args: list[bytes]) -> int:
    """Arguments as sent, including the command name (the server truncates to 32 in the slowlog)."""
    if args:
        m = _MORE_ARGS.match(decode(args[-1]))
        if m:
            return len(args) - 1 + int(m["n"])
    return len(args)


def key_positions(args: list[bytes], spec: tuple[int, int, int] | None) -> set[int]:
    """Indexes of key arguments from COMMAND INFO's (first_key, last_key, step); none when unknown."""
    if not spec or spec[0] <= 0 or spec[2] <= 0:
        return set()
    first, last, step = spec
    end = len(args) + last if last < 0 else min(last, len(args) - 1)
    return set(range(first, end + 1, step))


def redact_args(args: list[bytes], key: str, spec: tuple[int, int, int] | None) -> list[str]:
    head = 2 if "|" in key else 1
    shown = [decode(a).upper() for a in args[:head]]
    if key in ALWAYS_REDACTED or key.split("|")[0] in ALWAYS_REDACTED:
        return shown + [REDACTED] * (len(args) - head)
    keys = key_positions(args, spec)
    rest = []
    for i, arg in enumerate(args[head:], start=head):
        if _MORE_ARGS.match(decode(arg)) or i in keys:
            rest.append(decode(arg))
        else:
            rest.append(_length(arg))
    return shown + rest


def slowlog_entry(raw: list[Any], include_args: bool, specs: dict[str, tuple[int, int, int]]) -> dict[str, Any]:
    """One SLOWLOG GET entry -> a redacted dict (the raw arguments never leave this function)."""
    entry_id, ts, duration, args = raw[0], raw[1], raw[2], list(raw[3])
    addr = raw[4] if len(raw) > 4 else None
    name = raw[5] if len(raw) > 5 else None
    display, key = command_name(args)
    tool = decode(name) == TOOL_CLIENT_NAME if name else False
    out: dict[str, Any] = {
        "id": int(entry_id), "time": int(ts), "duration_us": int(duration), "command": display,
        "command_key": key, "arg_count": arg_count(args),
        "client": hash_id(addr), "client_name": TOOL_CLIENT_NAME if tool else hash_id(name), "tool": tool,
    }
    if include_args:
        out["args"] = redact_args(args, key, specs.get(key.split("|")[0]))
    return out


def client_fields(line: str) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in line.split(" ") if "=" in item)
