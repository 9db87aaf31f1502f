"""One masking function for everything the tool writes: logs, records, reports, incidents.

``mask(text)`` hides
- passwords in URLs (``redis://user:secret@host`` -> ``redis://user:***@host``),
- secret-looking query parameters (``?token=…``, ``&api_key=…``, ``&sig=…``),
- the values of environment variables whose names look secret, wherever they appear. A name looks secret
  when it contains TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE, CREDENTIAL, APIKEY, PRIVATEKEY or
  ACCESSKEY anywhere (``DB_PASSWORD_STAGING``, ``API_TOKEN_PROD``, ``dbPassword``), has PASS, KEY, KEYS,
  AUTH, AUTHORIZATION or CREDS as one of its ``_``-separated words (``SUPABASE_KEY_PROD``,
  ``SSH_PASS_2``), or ends in PASS or AUTH (``DBPASS``, ``OAUTH``). ``*_URL``/``*_URI`` variables are not
  secret as a whole (``BASE_URL``, ``OAUTH_TOKEN_URL`` stay readable): only the credentials inside them are.

Masking is linear in the length of the text (``benchmarks/bench_masking.py``): URL passwords are found
from each ``://`` forwards, never by trying every position of a long run of scheme-like characters.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# Secret words matched anywhere in a variable name (after upper-casing and removing '_', '-' and '.').
_SECRET_ANYWHERE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|APIKEY|PRIVATEKEY|ACCESSKEY")
# Secret words matched as one whole '_'-separated word of the name ("SUPABASE_KEY_PROD", not "MONKEY").
_SECRET_WORDS = frozenset({"PASS", "KEY", "KEYS", "AUTH", "AUTHORIZATION", "CREDS"})
# ... or at the very end of the name ("DBPASS", "GOOGLE_OAUTH").
_SECRET_SUFFIX = re.compile(r"(PASS|AUTH)$")
# A URL-valued variable is readable as a whole; its password is masked inside it.
_URL_SUFFIX = re.compile(r"[_\-.]?UR[LI]$")
_SECRET_QUERY = re.compile(
    r"(?P<k>[?&](?:access_token|token|api_?key|key|secret|password|passwd|sig|signature)=)[^&#\s\"']+",
    re.IGNORECASE,
)
# "://user:password@": found from each "://" (a literal the regex engine searches for quickly); the scheme
# before it is checked separately (``_has_scheme``), so a long run of scheme characters is read once.
_USERINFO = re.compile(r"://(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@")
_LETTERS = frozenset(string.ascii_letters)
_SCHEME_NON_LETTERS = string.digits + "+.-"
# Values shorter than this are not masked by value: "1" or "true" would mask half the text.
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    """Does an environment variable's name say its value is secret? (rules: module docstring)"""
    upper = name.upper()
    if _URL_SUFFIX.search(upper):
        return False
    words = [w for w in re.split(r"[^A-Z0-9]+", upper) if w]
    return bool(_SECRET_ANYWHERE.search("".join(words)) or _SECRET_WORDS.intersection(words)
                or _SECRET_SUFFIX.search(upper))


def _has_scheme(text: str, end: int, floor: int) -> bool:
    """Is ``text[:end]`` ending in a URL scheme (``[A-Za-z][A-Za-z0-9+.-]*``) that starts at or after ``floor``?

    The scheme is the run of scheme characters before ``end``; it must hold a letter. The usual case (a
    letter right before "://") is one comparison; otherwise the digits/``+.-`` are skipped with ``rstrip``.
    """
    if end <= floor:
        return False
    if text[end - 1] in _LETTERS:
        return True
    head = text[floor:end].rstrip(_SCHEME_NON_LETTERS)
    return bool(head) and head[-1] in _LETTERS


def _userinfo_matches(text: str) -> list[re.Match[str]]:
    """Every ``scheme://user:password@`` in ``text`` (as matches of ``_USERINFO``), in one linear pass."""
    if "://" not in text:
        return []
    found = []
    floor = 0
    for m in _USERINFO.finditer(text):
        if _has_scheme(text, m.start(), floor):
            found.append(m)
        floor = m.end()
    return found


def _mask_userinfo(text: str) -> str:
    matches = _userinfo_matches(text)
    if not matches:
        return text
    parts: list[str] = []
    last = 0
    for m in matches:
        parts += [text[last:m.start()], "://", m["user"], ":", MASK, "@"]
        last = m.end()
    parts.append(text[last:])
    return "".join(parts)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (the user name stays)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _mask_userinfo(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking variables (and URL passwords within any variable), longest first."""
    env = os.environ if env is None else env
    found: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if len(value) >= MIN_SECRET_LEN and is_secret_name(name):
            found.add(value)
        for m in _userinfo_matches(value):
            if len(m["pw"]) >= 3:
                found.add(m["pw"])
    return sorted(found, key=len, reverse=True)


def mask(text: str, env: Mapping[str, str] | None = None, extra: list[str] | None = None) -> str:
    """Mask URL passwords, secret environment values and ``extra`` values in ``text`` (linear time)."""
    if not text:
        return text
    text = _mask_userinfo(text)
    if "=" in text:
        text = _SECRET_QUERY.sub(lambda m: f"{m['k']}{MASK}", text)
    for value in [*(extra or []), *secret_values(env)]:
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def mask_obj(obj: Any, env: Mapping[str, str] | None = None) -> Any:
    """Recursively mask every string in a JSON-like structure (dict keys included)."""
    values = secret_values(env)
    def walk(o: Any) -> Any:
        if isinstance(o, str):
            return mask(o, env={}, extra=values)
        if isinstance(o, Mapping):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [walk(v) for v in o]
        return o
    return walk(obj)
