"""The one look of every report, and the side file every report writes.

- :data:`CSS` is THE style: the notebooks' banners and tables and ``index.html`` use it (``index.html``
  puts it in its ``<head>``; a notebook gets it with its banner). The chart colours come from here too.
- HTML pieces: :func:`banner`, :func:`table`, :func:`note`, :func:`join`, :func:`page`. Every string that
  comes from outside (run records, k6 check names, Redis keys, URLs, ledger reasons) goes through
  :func:`esc` (``html.escape`` after :func:`hardening.masking.mask`); tables through
  ``DataFrame.to_html(escape=True)`` with masked cells. A key named ``<script>alert(1)</script>`` shows
  as text and no secret reaches a report.
- Side files: each report module holds a typed summary (a dataclass deriving from :class:`Summary`).
  The notebook's last cell calls :func:`emit`, which writes the JSON side file and displays it under
  :data:`SUMMARY_MIMETYPE` (the HTML hides that output); ``build.py`` reads it back with
  :func:`read_summary` into the same class.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Self, TypeVar

import orjson
import pandas as pd
from IPython.display import HTML, display

from hardening import atomic
from hardening.masking import mask, mask_obj

SUMMARY_MIMETYPE = "application/vnd.hardening.summary+json"

PASS_COLOR, FAIL_COLOR, OTHER_COLOR = "#1a7f37", "#cf222e", "#9a6700"
MUTED_COLOR, BLUE, PURPLE, ORANGE = "#57606a", "#0969da", "#8250df", "#bc4c00"

CSS = f"""
.hz-banner{{padding:14px 18px;border-radius:6px;margin:6px 0 12px;font:16px/1.4 system-ui,sans-serif;color:#fff}}
.hz-banner h1,.hz-banner h2{{margin:0 0 4px;font-size:24px;color:#fff}}
.hz-banner .hz-facts{{font-size:13px;opacity:.9}}
.hz-pass{{background:{PASS_COLOR}}}.hz-fail{{background:{FAIL_COLOR}}}.hz-other{{background:{OTHER_COLOR}}}
.hz-note{{font:14px/1.5 system-ui,sans-serif;margin:6px 0}}
.hz-muted{{color:{MUTED_COLOR};font-size:13px}}
table.hz{{border-collapse:collapse;font:13px system-ui,sans-serif;margin:6px 0 14px}}
table.hz th,table.hz td{{border:1px solid #d0d7de;padding:3px 8px;text-align:left}}
table.hz th{{background:#f6f8fa}}
body.hz-page{{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#1f2328}}
body.hz-page li{{margin:6px 0}}
""".strip()
STYLE_TAG = f"<style>\n{CSS}\n</style>"


# ---------------------------------------------------------------- text


def esc(value: Any) -> str:
    """Masked and HTML-escaped text of any value."""
    return html.escape(mask(str(value)), quote=True)


def fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value * 100:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def tone(status: str | None) -> str:
    """CSS tone of a verdict: ``pass``, ``fail`` or ``other`` (error, interrupted, unknown)."""
    return {"pass": "pass", "fail": "fail"}.get(str(status or "").lower(), "other")


# ---------------------------------------------------------------- HTML pieces


def banner_html(title: str, lines: list[str] | tuple[str, ...] = (), kind: str = "other", facts: str = "",
                level: int = 2) -> str:
    """The verdict banner (``id="verdict"``) as markup; every text escaped. ``kind``: see :func:`tone`."""
    body = "".join(f"<div>{esc(x)}</div>" for x in lines)
    small = f'<div class="hz-facts">{esc(facts)}</div>' if facts else ""
    return (f'<div class="hz-banner hz-{tone(kind)}" id="verdict"><h{level}>{esc(title)}</h{level}>'
            f"{body}{small}</div>")


def banner(title: str, lines: list[str] | tuple[str, ...] = (), kind: str = "other", facts: str = "") -> HTML:
    """A notebook's banner, carrying the report style with it (it is the first output of every report)."""
    return HTML(STYLE_TAG + banner_html(title, lines, kind, facts))


def note(text: str) -> HTML:
    return HTML(f'<p class="hz-note">{esc(text)}</p>')


def join(*parts: HTML | None) -> HTML:
    """Several HTML outputs as one (keeps notebook cells to one call)."""
    return HTML("".join(p.data for p in parts if p is not None))


def table(df: pd.DataFrame | None, caption: str | None = None, max_rows: int = 60) -> HTML:
    """An escaped HTML table (values masked too); a note instead when ``df`` is empty."""
    if df is None or df.empty:
        return note(f"{caption}: no data" if caption else "no data")
    shown = df.head(max_rows).copy()
    for col in shown.columns:
        if isinstance(shown[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(shown[col]):
            shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown = shown.map(lambda v: mask(v) if isinstance(v, str) else v)
    shown.columns = [mask(str(c)) for c in shown.columns]
    body = shown.to_html(index=False, escape=True, classes="hz", na_rep="—", border=0,
                         float_format=lambda v: f"{v:,.3f}".rstrip("0").rstrip("."))
    head = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f'<p class="hz-note">… {len(df) - max_rows} more rows</p>' if len(df) > max_rows else ""
    return HTML(head + body + more)


def items(title: str, values: list[str]) -> HTML:
    """A titled bullet list of outside strings (escaped)."""
    return HTML(f"<h4>{esc(title)}</h4><ul>" + "".join(f"<li>{esc(v)}</li>" for v in values) + "</ul>")


def page(title: str, body: str) -> str:
    """A standalone offline page (no script) in the report style; ``body`` is markup already escaped."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{esc(title)}</title>{STYLE_TAG}</head>'
            f'<body class="hz-page">{body}</body></html>')


# ---------------------------------------------------------------- side files

S = TypeVar("S", bound="Summary")


class Summary:
    """Base of the reports' typed side files (subclasses are dataclasses): JSON out and back in."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and masked (numpy numbers, timestamps and NaN handled)."""
        raw = dataclasses.asdict(typing.cast(Any, self))
        data = orjson.loads(orjson.dumps(raw, default=_default,
                                         option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))
        return mask_obj(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The summary from its JSON (unknown keys ignored); TypeError when a required field is missing."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        return _build(cls, data)

    def index_line(self) -> str | None:
        """The sentence this report adds under the verdict of ``index.html`` (None: nothing)."""
        return None


def _default(obj: Any) -> Any:
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)


def _build(tp: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as type ``tp``: dataclasses, ``list[...]``, ``dict[str, ...]``, ``X | None``."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(args[0], value) if len(args) == 1 else value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name], value[f.name])
                     for f in dataclasses.fields(tp) if f.init and f.name in value})
    if origin is list and isinstance(value, list):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_build(arg, v) for v in value]
    if origin is dict and isinstance(value, dict):
        arg = (typing.get_args(tp) or (str, Any))[1]
        return {k: _build(arg, v) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def emit(summary_path: str | os.PathLike[str] | None, summary: Summary) -> None:
    """Write ``summary`` to the JSON side file (when a path is given) and display it with a custom mimetype.

    ``build.py``, CI and tests read the side file; the HTML ignores the mimetype, so nothing shows.
    """
    payload = summary.to_dict()
    if summary_path:
        dest = Path(summary_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(dest, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    display({SUMMARY_MIMETYPE: payload}, raw=True)


def read_summary(path: str | os.PathLike[str], kind: type[S]) -> S | None:
    """The side file at ``path`` as ``kind``; None when it is missing or not a valid ``kind``."""
    try:
        return kind.from_dict(orjson.loads(Path(path).read_bytes()))
    except (OSError, ValueError, TypeError, KeyError):
        return None
