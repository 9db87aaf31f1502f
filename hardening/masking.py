"""One masking function for everything the tool writes: logs, records, reports, incidents.

``mask(text)`` hides
- passwords in URLs (``redis://user:secret@host`` -> ``redis://user:***@host``),
- secret-looking query parameters (``?token=…``, ``&api_key=…``, ``&sig=…``),
- the values of environment variables whose names look secret (``*_TOKEN``, ``*_SECRET``,
  ``*PASSWORD*``, ``*_KEY``, ...), wherever they appear. ``*_URL``/``*_URI`` variables are not secret
  as a whole (``BASE_URL`` stays readable): only the credentials inside them are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|PASS|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|_KEY|CREDENTIALS?|AUTH)$",
    re.IGNORECASE,
)
_SECRET_QUERY = re.compile(
    r"(?P<k>[?&](?:access_token|token|api_?key|key|secret|password|passwd|sig|signature)=)[^&#\s\"']+",
    re.IGNORECASE,
)
# user:password@ inside any scheme://…; the password part is everything up to the last '@' before host.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@")
# Values shorter than this are not masked by value: "1" or "true" would mask half the text.
MIN_SECRET_LEN = 6


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (the user name stays)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
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
        if is_secret_name(name) and len(value) >= MIN_SECRET_LEN:
            found.add(value)
        for m in _URL_USERINFO.finditer(value):
            if len(m["pw"]) >= 3:
                found.add(m["pw"])
    return sorted(found, key=len, reverse=True)


def mask(text: str, env: Mapping[str, str] | None = None, extra: list[str] | None = None) -> str:
    """Mask URL passwords, secret environment values and ``extra`` values in ``text``."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
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
