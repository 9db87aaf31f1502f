"""SLO spec and engine: one file feeds k6's thresholds and our own, stricter evaluation.

The SLO file (JSON or YAML) has ``thresholds`` in k6's own ``options.thresholds`` form, so a plain
``k6 run`` of the script uses it unchanged, plus ``metrics`` declaring the type of custom metrics.
The engine parses k6's grammar ``aggregation operator number`` strictly (k6 itself accepts
``p(150)``, ``inf`` and ``1_000``, and panics on some of them), checks that the aggregation fits the
metric type, and evaluates against k6's ``--summary-export`` JSON or the raw samples. Unlike k6 it
treats missing data as a failure: an empty Trend (k6 reports 0 for every stat), an empty Rate or a
metric absent from the summary gives status ``no_data``.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hardening.errors import ConfigError
from hardening.loadtest import k6stats
from hardening.record.layout import RunLayout
from hardening.record.model import (
    BUILTIN_METRICS,
    COUNTER,
    GAUGE,
    RATE,
    TREND,
    SloOrigin,
    SloResult,
    SloStatus,
)

METRIC_TYPES = (TREND, COUNTER, RATE, GAUGE)

# Built-in Trends whose sample count equals a built-in Counter's count (used to spot an empty Trend
# in a summary export, which has no count unless "count" is in --summary-trend-stats).
_COUNT_SOURCES = {name: "http_reqs" for name, kind in BUILTIN_METRICS.items()
                  if kind == TREND and name.startswith("http_req_")}
_COUNT_SOURCES["iteration_duration"] = "iterations"

_AGGREGATIONS = {
    TREND: ("avg", "min", "max", "med", "p(N)"),
    COUNTER: ("count", "rate"),
    GAUGE: ("value",),
    RATE: ("rate",),
}
_PLAIN_AGGREGATIONS = {"avg", "min", "max", "med", "count", "rate", "value"}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
    "===": operator.eq, "==": operator.eq, "!=": operator.ne,
}
DEFAULT_TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_PERCENTILE_RE = re.compile(rf"p\((?P<n>{_NUMBER})\)")
# k6 trims Go's white space (unicode.IsSpace) around the aggregation and the number. Python's \s also
# matches U+001C..U+001F, which k6 does not trim (and then refuses), hence the explicit class.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_LOOSE_EXPR_RE = re.compile(rf"^[{_GO_SPACE}]*(?P<agg>[^<>=!]*?)[{_GO_SPACE}]*(?P<op>[<>=!]+)"
                            rf"[{_GO_SPACE}]*(?P<num>.*?)[{_GO_SPACE}]*$", re.DOTALL)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc
_CONTROL_NAMES = {0x00: "NUL", 0x09: "tab", 0x0A: "newline", 0x0B: "vertical tab", 0x0C: "form feed",
                  0x0D: "carriage return", 0x1B: "escape", 0x7F: "DEL", 0x85: "next line"}
_NOT_FINITE = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "nan", "+nan", "-nan"}
_METRIC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{1,127}$")
_GO_DURATION_RE = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_TOP_KEYS = ("description", "metrics", "thresholds")
_ENTRY_KEYS = ("threshold", "abortOnFail", "delayAbortEval")
_FIX_HINT = "Fix the SLO file (format: docs/slo.md)."


@dataclass
class Objective:
    """One threshold: ``metric[{tags}]`` plus ``aggregation operator target``."""

    name: str
    metric: str
    tags: dict[str, str]
    expression: str
    aggregation: str
    op: str
    target: float
    abort_on_fail: bool = False
    delay_abort_eval: str | None = None
    metric_type: str = TREND
    key: str = ""  # the threshold key exactly as written, e.g. "http_req_duration{scenario:spike}"
    origin: SloOrigin = SloOrigin.SLO_FILE
    raw_entry: str | dict[str, Any] | None = field(default=None, repr=False)  # as written in the file

    def k6_entry(self) -> str | dict[str, Any]:
        """This threshold as it appears in k6's ``options.thresholds[key]`` list (as written)."""
        if isinstance(self.raw_entry, dict):
            return dict(self.raw_entry)
        if self.raw_entry is not None or (not self.abort_on_fail and self.delay_abort_eval is None):
            return self.expression
        entry: dict[str, Any] = {"threshold": self.expression, "abortOnFail": self.abort_on_fail}
        if self.delay_abort_eval is not None:
            entry["delayAbortEval"] = self.delay_abort_eval
        return entry

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("raw_entry")
        out["origin"] = str(self.origin)
        return out


@dataclass
class SloSpec:
    """A loaded, validated SLO file."""

    source: str
    objectives: list[Objective]
    metric_types: dict[str, str]  # built-in k6 metrics plus the file's declared custom metrics
    description: str = ""
    declared_metrics: dict[str, str] = field(default_factory=dict)

    def k6_options_thresholds(self) -> dict[str, list[str | dict[str, Any]]]:
        """k6's ``options.thresholds`` object (reproduces the file's ``thresholds``)."""
        out: dict[str, list[str | dict[str, Any]]] = {}
        for obj in self.objectives:
            out.setdefault(obj.key, []).append(obj.k6_entry())
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as evaluated, for the record's ``"slo"`` (``RunLayout.run_json``)."""
        return {"source": self.source, "description": self.description,
                "metrics": dict(self.declared_metrics), "objectives": [o.to_dict() for o in self.objectives]}

    def to_file_dict(self) -> dict[str, Any]:
        return {"description": self.description, "metrics": dict(self.declared_metrics),
                "thresholds": self.k6_options_thresholds()}

    def write_k6_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON form the k6 script opens (``SLO_FILE``); atomic replace."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".slo-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_file_dict(), fh, indent=2, ensure_ascii=False)
                fh.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; it is a plain config copy in the record
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def resolve_types(self, types: Mapping[str, str]) -> list[str]:
        """Take custom metrics' types from k6's own output (``{name: trend|counter|rate|gauge}``).

        Returns a problem per objective whose aggregation does not fit the metric's real type (k6 would
        have refused such a threshold; an SLO-file-only objective still gets its verdict: no data)."""
        problems = []
        for obj in self.objectives:
            real = types.get(obj.metric)
            if real and real != obj.metric_type and obj.metric not in BUILTIN_METRICS:
                obj.metric_type = real
                self.metric_types[obj.metric] = real
                try:
                    _check_aggregation(obj.aggregation, obj.metric, real, f"SLO \"{obj.name}\"")
                except ConfigError as exc:
                    problems.append(str(exc))
        return problems

    def merged_with(self, other: SloSpec) -> SloSpec:
        """This spec plus ``other``'s objectives that are not already here (same key and expression)."""
        seen = {(o.key, o.expression.strip()) for o in self.objectives}
        extra = [o for o in other.objectives if (o.key, o.expression.strip()) not in seen]
        return SloSpec(source=self.source, objectives=[*self.objectives, *extra],
                       metric_types={**other.metric_types, **self.metric_types}, description=self.description,
                       declared_metrics=dict(self.declared_metrics))

    def summary_trend_stats(self) -> str:
        """Value for k6's ``--summary-trend-stats``: the usual stats, every p(N) used, and ``count``
        (so an empty custom Trend can be told apart from one whose samples are all 0)."""
        stats = list(DEFAULT_TREND_STATS)
        for obj in self.objectives:
            if obj.metric_type == TREND and obj.aggregation not in stats:
                stats.append(obj.aggregation)
        stats.append("count")
        return ",".join(stats)


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (a silently dropped SLO is worse than an error)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _json_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"SLO file not found: {path}. Pass an existing file with --slo "
                          "(default: loadtest/slo.json).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read SLO file {path}: {exc}. Check the path and its permissions.") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=_json_no_duplicates)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"SLO file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}. Fix the syntax there.") from None
        except ValueError as exc:
            raise ConfigError(f"SLO file {path}: {exc}. Each metric may appear once; put all its "
                              "thresholds in one list.") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe_load + duplicate-key check
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"SLO file {path} is not valid YAML: {problem}{where}. Fix the syntax there "
                          "(metric keys with braces need quotes).") from None


def load_slo(path: str | os.PathLike[str]) -> SloSpec:
    """Load and validate an SLO file (JSON by ``.json`` suffix, otherwise YAML); ConfigError if bad."""
    p = Path(path)
    return parse_slo(_read_document(p), source=str(path))


def parse_slo(doc: Any, source: str = "<slo>", origin: SloOrigin = SloOrigin.SLO_FILE) -> SloSpec:
    """Validate an already-parsed SLO document (see :func:`load_slo`).

    ``"thresholds": {}`` is allowed: the run is then judged by the script's own thresholds only. A custom
    metric need not be declared under ``"metrics"``: its type is taken from k6's output after the run
    (:meth:`SloSpec.resolve_types`); until then it is inferred from the aggregation.
    """
    where = f"SLO file {source}"
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{where}: the top level must be an object with \"thresholds\" (and optional "
                          f"\"metrics\", \"description\"). {_FIX_HINT}")
    for key in doc:
        if key not in _TOP_KEYS and not str(key).startswith("x-"):
            raise ConfigError(f"{where}: unknown top-level key {key!r}{_suggest(str(key), _TOP_KEYS)}. "
                              f"Allowed: {', '.join(_TOP_KEYS)} (or keys starting with 'x-').")
    description = doc.get("description", "") or ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}: \"description\" must be a string.")
    declared = _parse_declared_metrics(doc.get("metrics") or {}, where)
    types = {**BUILTIN_METRICS, **declared}
    thresholds = doc.get("thresholds")
    if not isinstance(thresholds, Mapping):
        raise ConfigError(f"{where}: \"thresholds\" must be an object mapping metric names to lists of "
                          "expressions, e.g. {\"http_req_duration\": [\"p(95)<800\"]} ({} = only the "
                          "script's own thresholds).")
    objectives: list[Objective] = []
    for key, entries in thresholds.items():
        objectives.extend(_parse_metric_thresholds(str(key), entries, types, source, origin))
    return SloSpec(source=source, objectives=objectives, metric_types=types,
                   description=description, declared_metrics=declared)


def _parse_declared_metrics(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: \"metrics\" must map custom metric names to a type "
                          f"({', '.join(METRIC_TYPES)}).")
    declared: dict[str, str] = {}
    for name, kind in raw.items():
        kind_s = str(kind).lower()
        if kind_s not in METRIC_TYPES:
            raise ConfigError(f"{where}: custom metric {name!r} has type {kind!r}; use one of "
                              f"{', '.join(METRIC_TYPES)}{_suggest(kind_s, METRIC_TYPES)}.")
        if not _METRIC_NAME_RE.match(str(name)):
            raise ConfigError(f"{where}: {name!r} is not a valid k6 metric name (2-128 ASCII letters, "
                              "digits or underscores, starting with a letter or underscore).")
        if name in BUILTIN_METRICS and BUILTIN_METRICS[name] != kind_s:
            raise ConfigError(f"{where}: {name!r} is a built-in k6 {BUILTIN_METRICS[name]}, not a "
                              f"{kind_s}; remove it from \"metrics\".")
        declared[str(name)] = kind_s
    return declared


def _type_from_aggregation(aggregation: str) -> str:
    """A custom metric's likely type before k6 has said it (``rate`` fits a Rate and a Counter: Rate)."""
    if aggregation in ("avg", "min", "max", "med") or aggregation.startswith("p("):
        return TREND
    return {"count": COUNTER, "value": GAUGE}.get(aggregation, RATE)


def _parse_metric_thresholds(key: str, entries: Any, types: dict[str, str], source: str,
                             origin: SloOrigin = SloOrigin.SLO_FILE) -> list[Objective]:
    where = f"SLO file {source}"
    if isinstance(entries, (str, Mapping)) or not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: thresholds of {key!r} must be a non-empty list, e.g. "
                          f"{json.dumps({key: ['p(95)<800']})} (k6 rejects a bare string or object).")
    objectives: list[Objective] = []
    seen: set[str] = set()
    for entry in entries:
        expression, abort, delay = _parse_entry(key, entry, where)
        slo = f"SLO \"{_printable(key)} {_printable(expression.strip())}\" in {source}"
        metric, tags = parse_metric_key(key, slo)
        aggregation, op, target = parse_expression(expression, slo)
        if metric not in types and not _METRIC_NAME_RE.match(metric):
            raise ConfigError(f"{slo}: {metric!r} is not a valid k6 metric name{_suggest(metric, sorted(types))}.")
        metric_type = types.get(metric) or _type_from_aggregation(aggregation)
        _check_aggregation(aggregation, metric, metric_type, slo)
        if expression.strip() in seen:
            raise ConfigError(f"{slo}: the expression appears twice for {key!r}; remove the duplicate "
                              "(k6 reports thresholds by expression, so duplicates collapse).")
        seen.add(expression.strip())
        objectives.append(Objective(
            name=f"{key} {expression.strip()}", metric=metric, tags=tags, expression=expression,
            aggregation=aggregation, op=op, target=target, abort_on_fail=abort, delay_abort_eval=delay,
            metric_type=metric_type, key=key, origin=origin,
            raw_entry=dict(entry) if isinstance(entry, Mapping) else entry))
    return objectives


def _parse_entry(key: str, entry: Any, where: str) -> tuple[str, bool, str | None]:
    if isinstance(entry, str):
        return entry, False, None
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: a threshold of {key!r} is {entry!r}; write a string like \"p(95)<800\" "
                          "or an object {\"threshold\": \"p(95)<800\", \"abortOnFail\": true}.")
    for k in entry:
        if k not in _ENTRY_KEYS:
            raise ConfigError(f"{where}: threshold of {key!r} has unknown field {k!r}"
                              f"{_suggest(str(k), _ENTRY_KEYS)}. Allowed: {', '.join(_ENTRY_KEYS)}.")
    expression = entry.get("threshold")
    if not isinstance(expression, str):
        raise ConfigError(f"{where}: a threshold object of {key!r} needs \"threshold\": a string such as "
                          "\"p(95)<800\".")
    abort = entry.get("abortOnFail", False)
    if not isinstance(abort, bool):
        raise ConfigError(f"{where}: SLO \"{key} {expression}\": abortOnFail must be true or false, "
                          f"not {abort!r}.")
    delay = entry.get("delayAbortEval")
    if delay is not None and (not isinstance(delay, str) or not _GO_DURATION_RE.match(delay)):
        raise ConfigError(f"{where}: SLO \"{key} {expression}\": delayAbortEval {delay!r} is not a "
                          "duration; write e.g. \"10s\" or \"1m30s\".")
    return expression, abort, delay


def parse_metric_key(key: str, where: str = "SLO") -> tuple[str, dict[str, str]]:
    """``"http_req_duration{scenario:spike}"`` -> ``("http_req_duration", {"scenario": "spike"})``."""
    opening, closing = key.find("{"), key.rfind("}")
    if opening == -1 and closing == -1:
        return key, {}
    problem = ""
    if opening == -1 or closing == -1 or closing < opening:
        problem = "unbalanced braces"
    elif closing != len(key) - 1:
        problem = "text after the closing brace"
    elif "{" in key[opening + 1:] or "}" in key[opening:closing]:
        problem = "nested braces"
    tags: dict[str, str] = {}
    if not problem:
        for part in key[opening + 1:closing].split(","):
            tag, sep, value = part.partition(":")
            tag, value = tag.strip(), value.strip().strip("\"'")
            if not sep or not tag or not value:
                problem = f"tag {part.strip()!r} is not tag:value"
                break
            if tag in tags:
                problem = f"tag {tag!r} appears twice"
                break
            tags[tag] = value
    if problem:
        raise ConfigError(f"{where}: bad sub-metric selector {key!r}: {problem}. Write "
                          "metric{tag:value,tag2:value2}, e.g. \"http_req_duration{scenario:spike}\".")
    return key[:opening], tags


def _printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\x00``, ``\\t``), for error messages."""
    return _CONTROL_RE.sub(lambda m: repr(m.group(0))[1:-1], text)


def _control_error(slo: str, part: str, text: str) -> ConfigError:
    char = next(c for c in text if _CONTROL_RE.match(c))
    name = _CONTROL_NAMES.get(ord(char), "control character")
    return ConfigError(f"{slo}: {part} {_printable(text)!r} contains a control character ({name}, "
                       f"U+{ord(char):04X}); k6 refuses it too (it ignores white space only around the "
                       "operator and at the ends). Remove it, e.g. \"p(95)<800\".")


def parse_expression(expression: str, slo: str = "SLO") -> tuple[str, str, float]:
    """Parse k6's ``aggregation operator number``; returns (aggregation, op, target) or ConfigError.

    As k6 does, white space (tabs and newlines included) around the aggregation and the number is ignored,
    and any other control character refuses the expression. Unlike k6, the target must be finite: k6
    refuses ``1e400`` (out of range) but accepts ``inf`` and ``NaN``, which cannot be an objective."""
    m = _LOOSE_EXPR_RE.match(expression)
    if not m or not m.group("agg"):
        if _CONTROL_RE.search(expression):
            raise _control_error(slo, "the expression", expression)
        raise ConfigError(f"{slo}: cannot parse {_printable(expression)!r}: expected 'aggregation operator "
                          "number' such as \"p(95)<800\" or \"rate<0.01\".")
    agg, op, num = m.group("agg"), m.group("op"), m.group("num")
    for part, text in (("aggregation", agg), ("target", num)):
        if _CONTROL_RE.search(text):
            raise _control_error(slo, f"the {part}", text)
    if op not in OPERATORS:
        hint = ("a bare '=' is not a k6 operator; use '==' (or '<=', '>=')" if op == "="
                else f"operator {op!r} is not one of {' '.join(OPERATORS)}")
        raise ConfigError(f"{slo}: {hint}.")
    pm = _PERCENTILE_RE.fullmatch(agg)
    if pm:
        pct = float(pm.group("n"))
        if not 0 <= pct <= 100:
            raise ConfigError(f"{slo}: percentile {agg} is outside p(0)..p(100); use e.g. p(95) or p(99.9).")
    elif agg not in _PLAIN_AGGREGATIONS:
        raise ConfigError(f"{slo}: unknown aggregation {agg!r}; use avg, min, max, med or p(N) for a Trend, "
                          "count or rate for a Counter, rate for a Rate, value for a Gauge (lower case, "
                          "no spaces inside p(N)).")
    if num.lower() in _NOT_FINITE:
        raise ConfigError(f"{slo}: target {num!r} is not a plain number: it is not finite. k6 accepts it, but "
                          "NaN fails every comparison and an infinite target bounds nothing (and neither fits in "
                          f"{RunLayout.RUN_JSON}); write a finite number such as 800.")
    if not _NUMBER_RE.fullmatch(num):
        raise ConfigError(f"{slo}: target {num!r} is not a plain number; write e.g. 800, 0.01 or 1e3 "
                          "(durations are in milliseconds, without a unit).")
    target = float(num)
    if not math.isfinite(target):
        raise ConfigError(f"{slo}: target {num} is out of range: it does not fit a 64-bit float (it would be "
                          "infinite). k6 refuses it too (\"value out of range\"); write a finite number.")
    return agg, op, target


def _check_aggregation(aggregation: str, metric: str, metric_type: str, slo: str) -> None:
    allowed = _AGGREGATIONS[metric_type]
    fits = aggregation in allowed or (metric_type == TREND and aggregation.startswith("p("))
    if not fits:
        raise ConfigError(f"{slo}: aggregation {aggregation!r} does not fit {metric!r}, a {metric_type}; "
                          f"a {metric_type} supports {', '.join(allowed)}. Change the aggregation or the metric.")


def _suggest(name: str, candidates: Any) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- evaluation


def judge(obj: Objective, observed: float | None, *, k6_failed: bool | None = None,
          detail: str = "") -> SloResult:
    """The verdict on ``obj`` for one observed value (None or NaN: no data, which fails)."""
    if observed is None or math.isnan(observed):
        status, margin, observed = SloStatus.NO_DATA, None, None
    else:
        passed = OPERATORS[obj.op](observed, obj.target)
        status = SloStatus.PASS if passed else SloStatus.FAIL
        if obj.op in ("<", "<="):
            margin = obj.target - observed
        elif obj.op in (">", ">="):
            margin = observed - obj.target
        else:
            margin = abs(observed - obj.target)
    return SloResult(name=obj.name, metric=obj.metric, expression=obj.expression.strip(),
                     aggregation=obj.aggregation, op=obj.op, target=obj.target, observed=observed,
                     margin=margin, status=status, k6_failed=k6_failed, tags=dict(obj.tags),
                     metric_type=obj.metric_type, detail=detail, origin=obj.origin)


def _summary_key_candidates(obj: Objective) -> list[str]:
    if not obj.tags:
        return [obj.key]
    inner = obj.key[obj.key.find("{") + 1:-1]
    k6_style = f"{obj.metric}{{{','.join(p.strip() for p in inner.split(','))}}}"
    canonical = f"{obj.metric}{{{','.join(f'{k}:{v}' for k, v in obj.tags.items())}}}"
    return list(dict.fromkeys([k6_style, obj.key, canonical]))


def _summary_entry(metrics: Mapping[str, Any], obj: Objective) -> tuple[dict | None, dict[str, bool]]:
    """(values, {expression: failed}) for both --summary-export and handleSummary's data shapes."""
    for name in _summary_key_candidates(obj):
        raw = metrics.get(name)
        if isinstance(raw, Mapping):
            if isinstance(raw.get("values"), Mapping):  # handleSummary(data): thresholds {expr: {ok}}
                failed = {e: not v.get("ok", True) for e, v in (raw.get("thresholds") or {}).items()}
                return dict(raw["values"]), failed
            values = {k: v for k, v in raw.items() if k != "thresholds"}
            return values, {e: bool(v) for e, v in (raw.get("thresholds") or {}).items()}
    return None, {}


def _stat_key(aggregation: str, values: Mapping[str, Any]) -> str:
    if aggregation in values or not aggregation.startswith("p("):
        return aggregation
    return f"p({k6stats.format_pct(float(aggregation[2:-1]) / 100)})"


def _known_count(obj: Objective, values: Mapping[str, Any], counts: Mapping[str, int] | None) -> int | None:
    """The metric's sample count from the summary's ``count`` or from ``counts``; None when unknown."""
    if isinstance(values.get("count"), (int, float)) and not isinstance(values.get("count"), bool):
        return int(values["count"])
    for name in (obj.key, obj.metric if not obj.tags else None):
        if counts and name in counts:
            return int(counts[name])
    return None


def _gauge_count(obj: Objective, values: Mapping[str, Any],
                 counts: Mapping[str, int] | None) -> tuple[int | None, str]:
    """k6 exports a Gauge without samples as ``value 0, min 0, max 0``: the count tells it from a Gauge
    whose samples were 0; without a count, that shape (or a lone 0 without min and max) is taken as empty."""
    n = _known_count(obj, values, counts)
    if n is not None:
        return n, ""
    stats = [values.get(k) for k in ("value", "min", "max") if k in values]
    if stats and all(v == 0 for v in stats):
        return 0, (" (sample count unknown; value, min and max are 0, which is how k6 reports a Gauge that "
                   "never got a sample)")
    return None, ""


def _trend_count(obj: Objective, values: Mapping[str, Any], metrics: Mapping[str, Any],
                 counts: Mapping[str, int] | None) -> tuple[int | None, str]:
    n = _known_count(obj, values, counts)
    if n is not None:
        return n, ""
    source = _COUNT_SOURCES.get(obj.metric)
    if source and not obj.tags:
        src = metrics.get(source)
        if isinstance(src, Mapping):
            src_values = src.get("values", src)
            if isinstance(src_values, Mapping) and isinstance(src_values.get("count"), (int, float)):
                return int(src_values["count"]), ""
    stats = [v for k, v in values.items() if k in DEFAULT_TREND_STATS or k.startswith("p(")]
    if stats and all(v == 0 for v in stats):
        return 0, " (sample count unknown; every statistic is 0, which is how k6 reports an empty Trend)"
    return None, ""


def evaluate_summary(spec: SloSpec, summary: Mapping[str, Any],
                     counts: Mapping[str, int] | None = None) -> list[SloResult]:
    """Evaluate every objective against k6's ``--summary-export`` JSON (or ``handleSummary`` data).

    ``counts`` optionally gives sample counts per metric key (e.g. from the raw samples) so an empty
    Trend is recognised even when ``count`` is not among ``--summary-trend-stats``.
    """
    metrics = summary.get("metrics", summary)
    results = []
    for obj in spec.objectives:
        values, thresholds = _summary_entry(metrics, obj)
        k6_failed = thresholds.get(obj.expression, thresholds.get(obj.expression.strip()))
        if values is None:
            results.append(judge(obj, None, k6_failed=k6_failed,
                                    detail=f"metric {obj.key!r} is not in the k6 summary: no samples"))
            continue
        observed, detail = _observed_from_summary(obj, values, metrics, counts)
        results.append(judge(obj, observed, k6_failed=k6_failed, detail=detail))
    return results


def _observed_from_summary(obj: Objective, values: Mapping[str, Any], metrics: Mapping[str, Any],
                           counts: Mapping[str, int] | None) -> tuple[float | None, str]:
    if obj.metric_type == RATE:
        passes, fails = values.get("passes"), values.get("fails")
        if passes is not None and fails is not None and passes + fails == 0:
            return None, "no samples (0 passes, 0 fails)"
        return _num(values.get("value", values.get("rate"))), ""
    if obj.metric_type == TREND:
        n, why = _trend_count(obj, values, metrics, counts)
        if n == 0:
            return None, "no samples" + why
        stat = _stat_key(obj.aggregation, values)
        if stat not in values:
            return None, (f"{obj.aggregation} is not in the k6 summary; add it to --summary-trend-stats "
                          f"(SloSpec.summary_trend_stats() lists what is needed)")
        return _num(values[stat]), ""
    if obj.metric_type == COUNTER:
        return _num(values.get(obj.aggregation)), ""
    n, why = _gauge_count(obj, values, counts)
    if n == 0:
        return None, "no samples" + why
    return _num(values.get("value")), ""


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _running_sum(values: Any) -> float:
    total = 0.0
    for v in values:  # arrival order, plain float64 adds, as k6's sinks do
        total += v
    return total


def evaluate_samples(spec: SloSpec, samples: Any, duration_s: float | None = None) -> list[SloResult]:
    """Evaluate against raw samples (DataFrame: time, metric, value and tag columns).

    Trend percentiles use k6's interpolation (:mod:`hardening.loadtest.k6stats`), so they equal k6's summary.
    NaN values are dropped first, as k6 drops NaN samples; a metric left without rows has no data (for a
    Gauge too: k6 would report it as 0).
    ``duration_s`` is the test run duration for a Counter's ``rate``; without it the span between the
    first and last sample is used (and the result says so).
    """
    results = []
    for obj in spec.objectives:
        missing_tags = [t for t in obj.tags if t not in samples.columns]
        if missing_tags:
            results.append(judge(obj, None, detail=f"no samples: tag(s) {', '.join(missing_tags)} "
                                                      "not recorded in the samples"))
            continue
        mask = (samples["metric"] == obj.metric).to_numpy(dtype=bool)
        for tag, value in obj.tags.items():
            mask = mask & samples[tag].astype("string").eq(value).fillna(False).to_numpy(dtype=bool)
        rows = samples.loc[mask]
        values = rows["value"].to_numpy(dtype=float)
        nan = np.isnan(values)
        if nan.any():  # k6 drops a NaN sample before any sink sees it
            values = values[~nan]
        observed, detail = _observed_from_samples(obj, values, rows, samples, duration_s)
        if nan.any():
            dropped = f"{int(nan.sum())} NaN sample(s) dropped, as k6 drops them"
            detail = f"{detail}; {dropped}" if detail else dropped
        results.append(judge(obj, observed, detail=detail))
    return results


def _observed_from_samples(obj: Objective, values: Any, rows: Any, samples: Any,
                           duration_s: float | None) -> tuple[float | None, str]:
    n = len(values)
    if obj.metric_type == COUNTER:
        total = _running_sum(values.tolist())
        if obj.aggregation == "count":
            return total, "" if n else "no samples; a Counter that never fired counts 0"
        if duration_s is None:
            if len(samples) < 2:
                return None, "no test duration to compute a rate"
            times = samples["time"]
            duration_s = (times.max() - times.min()).total_seconds()
            detail = "rate over the sample time span (test duration not given)"
        else:
            detail = ""
        return (total / duration_s if duration_s else None), detail
    if n == 0:
        return None, "no samples"
    if obj.metric_type == RATE:
        return float(int((values != 0).sum())) / float(n), ""
    if obj.metric_type == GAUGE:
        return float(values[-1]), ""
    if obj.aggregation.startswith("p("):
        return k6stats.percentile(values, float(obj.aggregation[2:-1]) / 100), ""
    if obj.aggregation == "avg":
        return _running_sum(values.tolist()) / n, ""
    if obj.aggregation == "min":
        return float(values.min()), ""
    if obj.aggregation == "max":
        return float(values.max()), ""
    return k6stats.percentile(values, 0.5), ""  # med


def overall_status(results: list[SloResult]) -> SloStatus:
    """PASS only if there is at least one result and every one passed (no_data fails)."""
    return SloStatus.PASS if results and all(r.ok for r in results) else SloStatus.FAIL


def format_value(metric_type: str, aggregation: str, value: float | None) -> str:
    """Human text for console/report: rates as %, Trend values in ms, counts as integers."""
    if value is None:
        return "no data"
    if metric_type == RATE or (metric_type == COUNTER and aggregation == "rate"):
        return f"{value * 100:.2f}%" if metric_type == RATE else f"{value:.2f}/s"
    if metric_type == TREND:
        return f"{value:.2f} ms"
    if metric_type == COUNTER and float(value).is_integer():
        return f"{int(value)}"
    return f"{value:g}"
