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
import os
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import orjson
import pandas as pd
from IPython.display import HTML, display

from hardening import atomic
from hardening.analysis import units
from hardening.masking import mask, mask_obj

SUMMARY_MIMETYPE = "application/vnd.hardening.summary+json"

PASS_COLOR, FAIL_COLOR, OTHER_COLOR = "#1a7f37", "#cf222e", "#9a6700"
MUTED_COLOR, BLUE, PURPLE, ORANGE = "#57606a", "#0969da", "#8250df", "#bc4c00"

CSS = f"""
.hz-banner{{padding:14px 18px;border-radius:6px;margin:6px 0 12px;font:16px/1.4 system-ui,sans-serif;color:#fff;
overflow-wrap:anywhere}}
.hz-banner h1,.hz-banner h2{{margin:0 0 4px;font-size:24px;color:#fff}}
.hz-banner .hz-facts{{font-size:13px;opacity:.9}}
.hz-pass{{background:{PASS_COLOR}}}.hz-fail{{background:{FAIL_COLOR}}}.hz-other{{background:{OTHER_COLOR}}}
.hz-note{{font:14px/1.5 system-ui,sans-serif;margin:6px 0;overflow-wrap:anywhere}}
.hz-starts{{font:15px/1.5 system-ui,sans-serif;margin:8px 0;padding:10px 14px;border-left:4px solid {BLUE};
background:#f6f8fa}}
.hz-muted{{color:{MUTED_COLOR};font-size:13px;overflow-wrap:anywhere}}
.hz-scroll{{overflow-x:auto;max-width:100%;-webkit-overflow-scrolling:touch;margin:6px 0 14px}}
.hz-scroll table.hz{{border-collapse:collapse;font:13px system-ui,sans-serif;margin:0;table-layout:auto}}
.hz-scroll table.hz th,.hz-scroll table.hz td{{border:1px solid #d0d7de;padding:3px 8px;text-align:left;
vertical-align:top}}
.hz-scroll table.hz th{{background:#f6f8fa}}
.hz-scroll table.hz td.hz-result{{font-weight:600;white-space:nowrap}}
td.hz-result.hz-pass,li .hz-result.hz-pass{{background:none;color:{PASS_COLOR}}}
td.hz-result.hz-fail,li .hz-result.hz-fail{{background:none;color:{FAIL_COLOR}}}
td.hz-result.hz-other,li .hz-result.hz-other{{background:none;color:{OTHER_COLOR}}}
ul.hz-key{{list-style:none;padding:0;margin:6px 0 14px}}
ul.hz-key li{{margin:4px 0;overflow-wrap:anywhere}}
.jp-RenderedImage img,.jp-OutputArea-output img,body.hz-page img{{max-width:100%;height:auto}}
body.hz-page{{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#1f2328}}
body.hz-page li{{margin:6px 0}}
@media (max-width:600px){{
.hz-banner{{padding:10px 12px}}
.hz-banner h1,.hz-banner h2{{font-size:20px}}
.hz-scroll table.hz{{font-size:12px}}
.hz-scroll table.hz th,.hz-scroll table.hz td{{padding:2px 5px}}
body.hz-page{{margin:12px auto;padding:0 10px}}
.jp-Notebook{{padding:4px !important}}
.jp-Cell{{padding:2px 0 !important}}
.jp-RenderedHTMLCommon{{padding-right:0 !important}}
}}
""".strip()
STYLE_TAG = f"<style>\n{CSS}\n</style>"


# ---------------------------------------------------------------- text


def esc(value: Any) -> str:
    """Masked and HTML-escaped text of any value."""
    return html.escape(mask(str(value)), quote=True)


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA (a scalar that holds no value)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 1) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def number(value: Any) -> str:
    """A number without a unit that never hides a small value: ``1,234``, ``12.35``, ``0.0123``, ``1.2e-07``."""
    if _missing(value):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.3g}"


def per_second(value: Any, unit: str = "/s") -> str:
    """A throughput with its unit: ``45.82 req/s`` (``unit`` e.g. ``" req/s"``, ``" ops/s"``, ``"/s"``)."""
    return "—" if _missing(value) else f"{float(value):,.2f}{unit}"


def times(value: Any) -> str:
    """A factor such as a burn rate: ``2.00×``."""
    return "—" if _missing(value) else f"{float(value):,.2f}×"


def size(value: Any) -> str:
    """Bytes in the largest whole unit: ``1.43 MiB``, signed when negative."""
    if _missing(value):
        return "—"
    v = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.2f} {unit}"
        v /= 1024
    return f"{v:,.2f} GiB"


def duration(seconds: Any) -> str:
    """A duration as people say it: ``0.35 s``, ``7.9 s``, ``45 s``, ``8 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if _missing(seconds):
        return "—"
    s = float(seconds)
    if s < 0:
        return "-" + duration(-s)
    if s < 1:
        return f"{s:.2f} s"
    if s < 10:
        return f"{s:.1f} s"
    whole = round(s)
    if whole < 60:
        return f"{whole} s"
    for big, small, name_big, name_small in ((86400, 3600, "d", "h"), (3600, 60, "h", "min"), (60, 1, "min", "s")):
        if whole >= big:
            high, rest = divmod(whole, big)
            low = round(rest / small) if small > 1 else rest
            if low * small >= big:  # 59.6 min rounds up to the next hour
                high, low = high + 1, 0
            return f"{high} {name_big} {low} {name_small}" if low else f"{high} {name_big}"
    return f"{whole} s"


def p_value(p: Any) -> str:
    """A p-value as :func:`hardening.analysis.units.pvalue` writes it; ``—`` when missing."""
    return "—" if _missing(p) else units.pvalue(float(p))


def when(value: Any) -> str:
    """A timestamp as ``2026-11-01 08:00:00 UTC``."""
    if _missing(value):
        return "—"
    try:
        t = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


# Units a table column can be shown in (``table(df, units={"p95": "ms"})``); the DataFrame stays numeric.
FORMATS: dict[str, Callable[[Any], str]] = {
    "ms": lambda v: "—" if _missing(v) else units.ms(v),
    "%": lambda v: "—" if _missing(v) else units.pct(v),
    "+%": lambda v: "—" if _missing(v) else units.pct(v, sign=True),
    "pp": lambda v: "—" if _missing(v) else units.pp(v),
    "p": p_value,
    "s": duration,
    "req/s": lambda v: per_second(v, " req/s"),
    "ops/s": lambda v: per_second(v, " ops/s"),
    "/s": per_second,
    "µs": lambda v: "—" if _missing(v) else f"{float(v):,.2f} µs",
    "≤µs": lambda v: "—" if _missing(v) else f"≤ {number(v)} µs",
    "×": times,
    "bytes": size,
    "count": number,
    "time": when,
}


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


def starts_here(text: str) -> HTML:
    """The "history starts here" state: a sentence where a chart of earlier runs would be (no empty axes)."""
    return HTML(f'<p class="hz-starts" data-state="history-starts-here">{esc(text)}</p>')


def join(*parts: HTML | None) -> HTML:
    """Several HTML outputs as one (keeps notebook cells to one call)."""
    return HTML("".join(p.data for p in parts if p is not None))


UNIT_AFTER_NUMBER = re.compile(r"(\d) (ms|µs|s|min|h|d|pp|req/s|ops/s|B|KiB|MiB|GiB|UTC)\b")


def keep_unit(text: str) -> str:
    """A value and its unit on one line (no-break space): ``300.00 ms`` never wraps to ``300.00`` / ``ms``."""
    return UNIT_AFTER_NUMBER.sub("\\1\u00a0\\2", text)


RESULT = "result"  # a table's verdict column: shown first, coloured, never scrolled out of view
MARKS = {"pass": "✓", "fail": "✗"}


def result_cell(value: Any) -> str:
    """``<td class="hz-result hz-fail">✗ FAIL</td>`` (the tone from the value's text)."""
    text = "—" if _missing(value) else str(value)
    word = text.strip().lower().split(" ")[-1] if text.strip() else ""
    kind = tone(word) if word in ("pass", "fail") else "other"
    mark = MARKS.get(kind, "")
    shown = text if not mark or text.startswith(mark) else f"{mark} {text}"
    return f'<td class="hz-result hz-{kind}">{esc(shown)}</td>'


def _cell(value: Any, shown: Callable[[Any], str] | None) -> str:
    if shown is not None:
        text = shown(value)
    elif isinstance(value, pd.Timestamp):
        text = when(value)
    elif isinstance(value, bool | np.bool_):
        text = "yes" if value else "no"
    else:
        text = number(value)
    return f"<td>{esc(keep_unit(text))}</td>"


def table(df: pd.DataFrame | None, caption: str | None = None, max_rows: int = 60,
          units: dict[str, str] | None = None) -> HTML:
    """An escaped HTML table (values masked too) in its own horizontal scroll box; a note when ``df`` is empty.

    ``units`` maps a column to a key of :data:`FORMATS` (``"ms"``, ``"%"``, ``"req/s"``, ``"s"``, ``"p"``...),
    so every value shows with its unit while the DataFrame stays numeric for analysts. A ``result`` column
    comes first (on a phone the verdict of each row stays in view) and is coloured.
    """
    if df is None or df.empty:
        return note(f"{caption}: no data" if caption else "no data")
    shown = df.head(max_rows)
    cols = list(shown.columns)
    if RESULT in cols:
        cols.remove(RESULT)
        cols.insert(0, RESULT)
    fmts = {c: FORMATS[u] for c, u in (units or {}).items() if c in cols}
    for col in cols:
        if col not in fmts and (isinstance(shown[col].dtype, pd.DatetimeTZDtype)
                                or pd.api.types.is_datetime64_any_dtype(shown[col])):
            fmts[col] = when
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    rows = []
    for rec in shown[cols].itertuples(index=False, name=None):
        cells = "".join(result_cell(v) if c == RESULT else _cell(v, fmts.get(c)) for c, v in zip(cols, rec, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    body = (f'<div class="hz-scroll"><table class="hz"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')
    title = f"<h4>{esc(caption)}</h4>" if caption else ""
    more = f'<p class="hz-note">… {len(df) - max_rows} more rows</p>' if len(df) > max_rows else ""
    return HTML(title + body + more)


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
