"""The one run-vs-baseline judge: every headline, table, CLI answer and exit code comes from here.

Method (docs/judge.md):

- **Baseline.** Pooled by default: the last ``pool_size`` (5) *passing* runs with the same environment,
  profile and script content (``script_sha256``; the script path when a record has no hash) that started
  before the run, leaving out runs the judge flagged as regressions, so a slow run that still met its SLOs
  never becomes the yardstick. A run's flag comes from its stored verdict (``RunLayout.verdict``, written by
  ``hardening loadtest`` through :func:`write_verdict`); a candidate without one is judged on the fly against
  *its* pooled baseline (memoized; only the last ``recompute_window`` candidates are recomputed, older ones
  without a verdict count as unflagged). Alternatives: a pin (``hardening baseline pin RUN``, stored in
  ``<history>/.baseline-pin.json`` per environment + profile + script hash) or an explicit run.
- **Latency** on raw ``http_req_duration`` samples of successful requests (``expected_response`` not
  ``false``), overall and per ``scenario`` and per ``name`` tag where both sides have ``min_samples``:
  Hodges–Lehmann shift with its distribution-free interval at ``confidence`` (0.98), Mann-Whitney U
  p-value (one-sided, run slower), and the decisive test: "the shift exceeds ``tolerance`` (5%) of the
  baseline median", the Mann-Whitney test of ``run − margin`` against the baseline, whose p-value is
  ≤ α = (1 − confidence)/2 exactly when the interval's lower bound lies above the margin. With several
  series the margin p-values are Holm-adjusted; a series regresses when its adjusted p ≤ α.
- **Errors** on request counts (failed of total: ``http_req_failed`` samples, else k6's summary
  passes/fails, else the record): one-sided Fisher's exact test and Newcombe's hybrid Wilson interval for
  the rate difference; a regression when p ≤ α and the interval's lower bound exceeds ``error_tolerance``
  (0.1 percentage points).
"""

from __future__ import annotations

import datetime as dt
import getpass
import math
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from hardening.analysis import stats, units
from hardening.analysis.judge_settings import JudgeSettings
from hardening.atomic import write_json
from hardening.errors import EXIT_FAIL, EXIT_OK, ConfigError
from hardening.record.layout import RunLayout
from hardening.record.model import RunRecord, RunStatus
from hardening.record.reader import RecordWarning, load_runs, read_record, resolve_path

VERDICT_SCHEMA = "hardening.verdict/1"
PIN_FILE = ".baseline-pin.json"
PIN_SCHEMA = "hardening.baseline-pins/1"
LATENCY_METRIC = "http_req_duration"
FAILED_METRIC = "http_req_failed"
OVERALL = "overall"

POOLED, PINNED, EXPLICIT, NONE = "pooled", "pinned", "explicit", "none"


# ---------------------------------------------------------------- settings and results


def _num(value: Any) -> float | None:
    """JSON-safe float: None for missing, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _pair(pair: tuple[float, float] | None) -> list[float | None] | None:
    return None if pair is None else [_num(pair[0]), _num(pair[1])]


@dataclass
class SeriesResult:
    """One latency series: ``overall``, ``scenario=<s>`` or ``name=<n>`` (run vs baseline, in ms)."""

    series: str
    kind: str  # overall | scenario | name
    key: str | None
    n: int
    n_baseline: int
    median_ms: float | None = None
    baseline_median_ms: float | None = None
    shift_ms: float | None = None  # Hodges–Lehmann, run − baseline
    ci_ms: tuple[float, float] | None = None
    relative: float | None = None  # shift / baseline median
    relative_ci: tuple[float, float] | None = None
    margin_ms: float | None = None  # tolerance × baseline median
    p_value: float | None = None  # Mann-Whitney, one-sided (run slower), no tolerance
    p_margin: float | None = None  # shift > margin, one-sided
    p_adjusted: float | None = None  # p_margin after Holm over the tested series
    tested: bool = False
    regression: bool = False
    classification: str = "NoData"  # High | Low | Pass | NoData (Kayenta's words)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("median_ms", "baseline_median_ms", "shift_ms", "relative", "margin_ms", "p_value", "p_margin",
                  "p_adjusted"):
            out[k] = _num(out[k])
        out["ci_ms"], out["relative_ci"] = _pair(self.ci_ms), _pair(self.relative_ci)
        return out


@dataclass
class ErrorResult:
    """Failed requests of the run vs the pooled baseline, on counts."""

    tested: bool = False
    regression: bool = False
    failed: int | None = None
    total: int | None = None
    rate: float | None = None
    baseline_failed: int | None = None
    baseline_total: int | None = None
    baseline_rate: float | None = None
    diff: float | None = None  # rate − baseline rate
    diff_ci: tuple[float, float] | None = None  # Newcombe hybrid Wilson, at confidence
    p_value: float | None = None  # Fisher's exact, one-sided (run has more failures)
    source: str | None = None  # samples | k6-summary | RunLayout.RUN_JSON (of the run; baselines may mix)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("rate", "baseline_rate", "diff", "p_value"):
            out[k] = _num(out[k])
        out["diff_ci"] = _pair(self.diff_ci)
        return out


@dataclass
class Verdict:
    """The judge's answer for one run (JSON contract: :meth:`to_dict`, docs/judge.md)."""

    run: str
    baseline: list[str]
    baseline_mode: str  # pooled | pinned | explicit | none
    series: list[SeriesResult]
    errors: ErrorResult
    settings: JudgeSettings = field(default_factory=JudgeSettings)
    excluded: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    environment: str | None = None
    profile: str | None = None
    script_sha256: str | None = None
    reason: str = ""  # why there is no baseline

    @property
    def overall(self) -> SeriesResult:
        for s in self.series:
            if s.kind == OVERALL:
                return s
        return SeriesResult(OVERALL, OVERALL, None, 0, 0, note="no latency data")

    @property
    def latency_regression(self) -> bool:
        return any(s.regression for s in self.series)

    @property
    def regression(self) -> bool:
        return self.latency_regression or self.errors.regression

    @property
    def status(self) -> str:
        if self.baseline_mode == NONE:
            return "no_baseline"
        return "regression" if self.regression else "pass"

    @property
    def exit_code(self) -> int:
        return EXIT_FAIL if self.regression else EXIT_OK

    @property
    def headline(self) -> str:
        return headline(self)

    def to_dict(self) -> dict[str, Any]:
        o = self.overall
        latency = {"regression": self.latency_regression, "tested": o.tested, "series": o.series,
                   "p_value": _num(o.p_value), "p_margin": _num(o.p_margin), "p_adjusted": _num(o.p_adjusted),
                   "shift_ms": _num(o.shift_ms), "ci_ms": _pair(o.ci_ms), "relative": _num(o.relative),
                   "relative_ci": _pair(o.relative_ci), "median_ms": _num(o.median_ms),
                   "baseline_median_ms": _num(o.baseline_median_ms), "margin_ms": _num(o.margin_ms),
                   "n": o.n, "n_baseline": o.n_baseline,
                   "regressed_series": [s.series for s in self.series if s.regression]}
        return {"schema": VERDICT_SCHEMA, "run": self.run, "status": self.status, "regression": self.regression,
                "headline": self.headline, "baseline": list(self.baseline), "baseline_mode": self.baseline_mode,
                "excluded": list(self.excluded), "environment": self.environment, "profile": self.profile,
                "script_sha256": self.script_sha256, "latency": latency, "errors": self.errors.to_dict(),
                "series": [s.to_dict() for s in self.series], "settings": self.settings.to_dict(),
                "warnings": list(self.warnings), "reason": self.reason}


def headline(v: Verdict) -> str:
    """One sentence: the verdict, the latency shift with its interval and p-value, the error rates."""
    if v.baseline_mode == NONE:
        return f"no baseline: {v.reason}"
    conf = f"{v.settings.confidence:.0%}"
    o = v.overall
    if o.tested and o.ci_ms is not None:
        lat = (f"latency {units.pct(o.relative, sign=True)} ({units.ms(o.shift_ms, sign=True)}, {conf} CI "
               f"{units.ms(o.ci_ms[0], sign=True)} to {units.ms(o.ci_ms[1], sign=True)}; "
               f"p={units.pvalue(o.p_value)})")
    else:
        lat = f"latency not tested ({o.note or 'no data'})"
    others = [s for s in v.series if s.regression and s.kind != OVERALL]
    if others:
        lat += "; slower: " + ", ".join(f"{s.series} {units.pct(s.relative, sign=True)}" for s in others)
    e = v.errors
    if e.tested:
        err = (f"errors {units.pct(e.rate)} vs {units.pct(e.baseline_rate)} "
               f"(Fisher p={units.pvalue(e.p_value)})")
    else:
        err = f"errors not tested ({e.note or 'no data'})"
    what = [w for w, bad in (("latency", v.latency_regression), ("errors", e.regression)) if bad]
    lead = f"REGRESSION ({', '.join(what)})" if what else "no regression"
    n = len(v.baseline)
    base = f"{v.baseline_mode} baseline of {n} run{'s' if n != 1 else ''}"
    return f"{lead}: {lat}; {err}; vs {base}"


# ---------------------------------------------------------------- one run's data


@dataclass
class _RunSamples:
    run_id: str
    latency: pd.DataFrame | None  # value, scenario, name of successful requests; None without samples
    failed: int | None
    total: int | None
    error_source: str | None


class _Loader:
    """Reads each run's samples once per judgement (a baseline run serves many recomputed verdicts)."""

    def __init__(self) -> None:
        self._cache: dict[str, _RunSamples] = {}

    def get(self, path: Path, record: RunRecord) -> _RunSamples:
        key = str(path)
        if key not in self._cache:
            self._cache[key] = _load_samples(Path(path), record)
        return self._cache[key]


def _load_samples(path: Path, record: RunRecord) -> _RunSamples:
    layout = RunLayout(path)
    latency, failed, total, source = None, None, None, None
    if layout.has_samples:
        names = set(pq.read_schema(layout.samples).names)
        cols = ["metric", "value", *[c for c in ("scenario", "name", "expected_response") if c in names]]
        table = pq.read_table(layout.samples, columns=cols,
                              filters=[("metric", "in", [LATENCY_METRIC, FAILED_METRIC])]).to_pandas()
        metric = table["metric"].astype(str)
        dur = table[metric == LATENCY_METRIC]
        if "expected_response" in dur:
            dur = dur[dur["expected_response"].astype("string").fillna("") != "false"]
        latency = pd.DataFrame({
            "value": dur["value"].to_numpy(dtype=float),
            "scenario": dur["scenario"].astype("string").to_numpy() if "scenario" in dur else None,
            "name": dur["name"].astype("string").to_numpy() if "name" in dur else None,
        })
        latency = latency[np.isfinite(latency["value"].to_numpy())]
        flags = table.loc[metric == FAILED_METRIC, "value"].to_numpy(dtype=float)
        if flags.size:
            failed, total, source = int((flags != 0).sum()), int(flags.size), "samples"
    if total is None and layout.k6_summary.is_file():
        try:
            values = (orjson.loads(layout.k6_summary.read_bytes()).get("metrics") or {}).get(FAILED_METRIC) or {}
        except (OSError, ValueError):
            values = {}
        passes, fails = values.get("passes"), values.get("fails")
        if isinstance(passes, int | float) and isinstance(fails, int | float) and passes + fails > 0:
            failed, total, source = int(passes), int(passes + fails), "k6-summary"  # a Rate's passes = failed requests
    if total is None and record.metrics.requests and record.metrics.error_rate is not None:
        total = int(record.metrics.requests)
        failed, source = round(record.metrics.error_rate * total), RunLayout.RUN_JSON
    return _RunSamples(record.run_id, latency, failed, total, source)


# ---------------------------------------------------------------- the comparison


def _tags(frame: pd.DataFrame, kind: str) -> np.ndarray:
    """A tag column as an object array of str (None where missing)."""
    col = frame[kind]
    return np.where(col.isna().to_numpy(), None, col.astype(str).to_numpy(object))


def _series_keys(tags: np.ndarray) -> list[str]:
    """Tag values of the run, the most requested first."""
    return [str(k) for k in pd.Series(tags).dropna().value_counts().index]


def _test_series(label: str, kind: str, key: str | None, x: np.ndarray, y: np.ndarray,
                 settings: JudgeSettings) -> SeriesResult:
    res = SeriesResult(label, kind, key, int(x.size), int(y.size),
                       median_ms=float(np.median(x)) if x.size else None,
                       baseline_median_ms=float(np.median(y)) if y.size else None)
    if x.size < settings.min_samples or y.size < settings.min_samples:
        res.note = f"fewer than {settings.min_samples} samples on a side"
        return res
    bm = res.baseline_median_ms
    shift, lo, hi = stats.hodges_lehmann(x, y, settings.confidence)
    margin = settings.tolerance * abs(bm)
    res.shift_ms, res.ci_ms, res.margin_ms = shift, (lo, hi), margin
    if bm:
        res.relative, res.relative_ci = shift / abs(bm), (lo / abs(bm), hi / abs(bm))
    res.p_value = stats.mannwhitney_greater_p(x, y)
    res.p_margin = stats.shift_above_p(x, y, margin)
    res.tested = True
    return res


def compare_latency(cur: pd.DataFrame | None, base: pd.DataFrame | None,
                    settings: JudgeSettings | None = None) -> list[SeriesResult]:
    """Latency series of ``cur`` vs ``base`` (frames of value, scenario, name); Holm across the tested ones."""
    settings = settings or JudgeSettings()
    if cur is None or base is None or cur.empty or base.empty:
        note = ("no raw latency samples in the run" if cur is None or cur.empty
                else "no raw latency samples in the baseline runs")
        return [SeriesResult(OVERALL, OVERALL, None, 0 if cur is None else len(cur),
                             0 if base is None else len(base), note=note)]
    x_all, y_all = cur["value"].to_numpy(float), base["value"].to_numpy(float)
    out = [_test_series(OVERALL, OVERALL, None, x_all, y_all, settings)]
    extra: list[SeriesResult] = []
    seen = {(np.ones(x_all.size, bool).tobytes(), np.ones(y_all.size, bool).tobytes())}
    for kind in ("scenario", "name"):
        if kind not in cur or kind not in base:
            continue
        cur_tags, base_tags = _tags(cur, kind), _tags(base, kind)
        for key in _series_keys(cur_tags):
            mx, my = cur_tags == key, base_tags == key
            if (mx.tobytes(), my.tobytes()) in seen:
                continue  # the same requests as a series already tested (e.g. a scenario with one name)
            seen.add((mx.tobytes(), my.tobytes()))
            extra.append(_test_series(f"{kind}={key}", kind, key, x_all[mx], y_all[my], settings))
    tested_extra = sorted([s for s in extra if s.tested], key=lambda s: -s.n)
    keep = tested_extra[:settings.max_series]
    out += keep + [s for s in extra if not s.tested]
    tested = [s for s in out if s.tested]
    for s, adj in zip(tested, stats.holm([s.p_margin for s in tested]), strict=True):
        s.p_adjusted = adj
        s.regression = adj <= settings.alpha
        lower_bad = s.ci_ms is not None and s.margin_ms is not None and s.ci_ms[1] < -s.margin_ms
        s.classification = "High" if s.regression else "Low" if lower_bad else "Pass"
    return out


def compare_errors(failed: int | None, total: int | None, base_failed: int | None, base_total: int | None,
                   settings: JudgeSettings | None = None, source: str | None = None) -> ErrorResult:
    """Failed requests of the run vs the baseline: Fisher's exact test and Newcombe's interval."""
    settings = settings or JudgeSettings()
    res = ErrorResult(failed=failed, total=total, baseline_failed=base_failed, baseline_total=base_total,
                      source=source)
    if not total or not base_total or failed is None or base_failed is None:
        res.note = "no request counts" + ("" if total else " in the run")
        return res
    res.rate, res.baseline_rate = failed / total, base_failed / base_total
    diff, lo, hi = stats.newcombe_interval(failed, total, base_failed, base_total, settings.confidence)
    res.diff, res.diff_ci = diff, (lo, hi)
    res.p_value = stats.fisher_greater_p(failed, total, base_failed, base_total)
    res.tested = True
    res.regression = res.p_value <= settings.alpha and lo > settings.error_tolerance
    return res


def _compare_runs(cur: _RunSamples, base: list[_RunSamples], settings: JudgeSettings
                  ) -> tuple[list[SeriesResult], ErrorResult, list[str]]:
    notes = []
    with_lat = [b for b in base if b.latency is not None]
    for b in base:
        if b.latency is None:
            notes.append(f"baseline run {b.run_id} kept no raw samples: it is not in the latency baseline")
    base_lat = pd.concat([b.latency for b in with_lat], ignore_index=True) if with_lat else None
    series = compare_latency(cur.latency, base_lat, settings)
    if cur.latency is None:
        series[0].note = f"run {cur.run_id} kept no raw samples ({RunLayout.SAMPLES})"
    counted = [b for b in base if b.total]
    errors = compare_errors(cur.failed, cur.total, sum(b.failed or 0 for b in counted) if counted else None,
                            sum(b.total or 0 for b in counted) if counted else None, settings, cur.error_source)
    return series, errors, notes


# ---------------------------------------------------------------- stored verdict (RunLayout.verdict)


def verdict_path(run_dir: str | os.PathLike[str]) -> Path:
    return RunLayout(Path(run_dir)).verdict


def read_verdict(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A run's stored verdict (``RunLayout.verdict``), or None when absent or unreadable (then recomputed)."""
    path = verdict_path(run_dir)
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"{path} is unreadable ({exc}); the run's verdict is recomputed", RecordWarning, stacklevel=2)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("regression"), bool):
        warnings.warn(f"{path} has no boolean 'regression'; the run's verdict is recomputed", RecordWarning,
                      stacklevel=2)
        return None
    return data


def verdict_document(verdict: Verdict) -> dict[str, Any]:
    """What a stored verdict (``RunLayout.verdict``) holds: the JSON contract plus when it was judged."""
    return {**verdict.to_dict(), "judged_at": dt.datetime.now(dt.UTC).isoformat()}


def write_verdict(run_dir: str | os.PathLike[str], verdict: Verdict) -> Path:
    """Write the verdict into a run record (``RunLayout.verdict``, atomically); later judgements read its
    ``regression``."""
    return write_json(verdict_path(run_dir), verdict_document(verdict))


# ---------------------------------------------------------------- baseline selection


def _script_key(record: RunRecord) -> str:
    """The script content's hash; ``path:<script>`` for records written before hashes were kept."""
    return record.script_sha256 or f"path:{record.script}"


def _group(history: pd.DataFrame, record: RunRecord) -> pd.DataFrame:
    """Passing runs of the same environment, profile and script content that started before ``record``."""
    if history.empty:
        return history
    h = history
    same = ((h["status"].astype(str) == str(RunStatus.PASS)) & (h["run_id"] != record.run_id)
            & (h["environment"].fillna("").astype(str) == (record.environment or ""))
            & (h["profile"].fillna("").astype(str) == (record.profile or "")))
    sha = h["script_sha256"]
    has_sha = sha.notna() & (sha.astype(str) != "")
    keys = sha.astype(str).where(has_sha, "path:" + h["script"].astype(str))
    same &= keys == _script_key(record)
    started = pd.to_datetime(record.started_at, utc=True, errors="coerce")
    if not pd.isna(started):
        same &= h["started_at"] < started
    return h[same].reset_index(drop=True)


class _PoolBuilder:
    """Pooled baselines over one group of candidates (chronological), with memoized flags."""

    def __init__(self, cands: pd.DataFrame, settings: JudgeSettings, loader: _Loader) -> None:
        self.cands = cands
        self.settings = settings
        self.loader = loader
        self.window_start = max(0, len(cands) - settings.recompute_window)
        self._flags: dict[int, tuple[bool, str]] = {}
        self._records: dict[int, RunRecord] = {}

    def record(self, i: int) -> RunRecord:
        if i not in self._records:
            self._records[i] = read_record(self.cands.loc[i, "path"])
        return self._records[i]

    def flag(self, i: int) -> tuple[bool, str]:
        """(flagged, why) for candidate ``i``."""
        if i in self._flags:
            return self._flags[i]
        path = self.cands.loc[i, "path"]
        stored = read_verdict(path)
        if stored is not None:
            result = (bool(stored["regression"]), f"flagged as a regression in its {RunLayout.VERDICT} "
                      f"({stored.get('headline', '')})".replace(" ()", ""))
        elif i < self.window_start:
            result = (False, "")
        else:
            pool, _ = self.pool_before(i)
            if not pool:
                result = (False, "")
            else:
                cur = self.loader.get(Path(path), self.record(i))
                base = [self.loader.get(Path(self.cands.loc[j, "path"]), self.record(j)) for j in pool]
                series, errors, _ = _compare_runs(cur, base, self.settings)
                result = (any(s.regression for s in series) or errors.regression,
                          f"flagged as a regression when judged now ({_flag_text(series, errors)})")
        self._flags[i] = result
        return result

    def pool_before(self, end: int) -> tuple[list[int], list[int]]:
        """The last ``pool_size`` unflagged candidates before index ``end``, and the flagged ones passed over."""
        chosen, skipped = [], []
        for j in range(end - 1, -1, -1):
            if self.flag(j)[0]:
                skipped.append(j)
            else:
                chosen.append(j)
                if len(chosen) == self.settings.pool_size:
                    break
        return chosen[::-1], skipped[::-1]


# ---------------------------------------------------------------- pins


def pins_path(history_dir: str | os.PathLike[str]) -> Path:
    return resolve_path(history_dir) / PIN_FILE


def read_pins(history_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The pins of a history folder (``[]`` when there is no pin file); ConfigError when it is corrupt."""
    path = pins_path(history_dir)
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable pin file ({exc}); fix or delete it") from None
    pins = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(pins, list) or not all(isinstance(p, dict) and p.get("run_id") for p in pins):
        raise ConfigError(f"{path} is not a pin file (expected {{\"pins\": [{{\"run_id\": ...}}, ...]}})")
    return pins


def _pin_key(p: dict[str, Any] | RunRecord) -> tuple[str, str, str]:
    if isinstance(p, RunRecord):
        return (p.environment or "", p.profile or "", _script_key(p))
    return (p.get("environment") or "", p.get("profile") or "", p.get("script_key") or "")


def pinned_for(history_dir: str | os.PathLike[str], record: RunRecord) -> dict[str, Any] | None:
    """The pin that applies to ``record`` (same environment, profile and script content), if any."""
    key = _pin_key(record)
    for p in read_pins(history_dir):
        if _pin_key(p) == key:
            return p
    return None


def _write_pins(history_dir: str | os.PathLike[str], pins: list[dict[str, Any]]) -> Path:
    return write_json(pins_path(history_dir), {"schema": PIN_SCHEMA, "pins": pins})


def pin_baseline(history_dir: str | os.PathLike[str], run: str | os.PathLike[str]) -> dict[str, Any]:
    """Pin ``run`` (a run folder or id in ``history_dir``) as the baseline of its environment, profile and
    script content; replaces an earlier pin of the same key. Returns the pin."""
    path = resolve_run(run, history_dir)
    rec = read_record(path)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = None
    pin = {"environment": rec.environment, "profile": rec.profile, "script": rec.script,
           "script_sha256": rec.script_sha256, "script_key": _script_key(rec), "run_id": rec.run_id,
           "pinned_at": dt.datetime.now(dt.UTC).isoformat(), "pinned_by": os.environ.get("GITHUB_ACTOR") or user}
    pins = [p for p in read_pins(history_dir) if _pin_key(p) != _pin_key(rec)]
    _write_pins(history_dir, [*pins, pin])
    return pin


def unpin_baseline(history_dir: str | os.PathLike[str], run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Remove the pin of ``run``'s environment, profile and script content (``run`` may be any run of it)."""
    rec = read_record(resolve_run(run, history_dir))
    pins = read_pins(history_dir)
    keep = [p for p in pins if _pin_key(p) != _pin_key(rec)]
    if len(keep) != len(pins):
        _write_pins(history_dir, keep)
    return [p for p in pins if _pin_key(p) == _pin_key(rec)]


# ---------------------------------------------------------------- entry points


def resolve_run(run: str | os.PathLike[str], history_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run folder from a path or a run id under ``history_dir``; ConfigError (exit 2) when unknown."""
    p = Path(run)
    if RunLayout(resolve_path(p)).run_json.is_file():
        return resolve_path(p)
    if history_dir is not None:
        candidate = resolve_path(history_dir) / str(run)
        if RunLayout(candidate).run_json.is_file():
            return candidate
    where = f" nor a run id under {history_dir}" if history_dir is not None else ""
    raise ConfigError(f"unknown run {str(run)!r}: not a run folder (with {RunLayout.RUN_JSON}){where}")


def _history_frame(history: pd.DataFrame | str | os.PathLike[str] | None) -> pd.DataFrame | None:
    if history is None or isinstance(history, pd.DataFrame):
        return history
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordWarning)  # unreadable records are simply not candidates
        return load_runs(history)


def _history_dir(history: pd.DataFrame | str | os.PathLike[str] | None) -> Path | None:
    if history is None:
        return None
    if isinstance(history, pd.DataFrame):
        if history.empty or "path" not in history:
            return None
        return Path(history["path"].iloc[0]).parent
    return resolve_path(history)


def judge(run: str | os.PathLike[str], history: pd.DataFrame | str | os.PathLike[str] | None,
          baseline: str | os.PathLike[str] | None = None, settings: JudgeSettings | None = None) -> Verdict:
    """Judge the run folder ``run`` against its baseline from ``history`` (a folder of run records, or the
    DataFrame of :func:`hardening.record.reader.load_runs`).

    ``baseline``: None or ``"auto"`` = the pin for the run's environment/profile/script if there is one, else
    the pooled baseline; ``"pooled"`` = the pooled baseline even when a pin exists; anything else = a run
    folder or a run id in the history (ConfigError when unknown).
    """
    settings = (settings or JudgeSettings()).validate()
    run_path = resolve_run(run, _history_dir(history))
    record = read_record(run_path)
    frame = _history_frame(history)
    hdir = _history_dir(history)
    loader = _Loader()
    warn: list[str] = []
    base_paths: list[Path] = []
    excluded: list[dict[str, str]] = []
    mode = NONE
    reason = ""
    choice = "auto" if baseline is None else str(baseline)
    if choice not in ("auto", "pooled"):
        bpath = resolve_run(choice, hdir)
        if bpath.resolve() == run_path.resolve():
            raise ConfigError("a run cannot be its own baseline: pass another run to --baseline")
        base_paths, mode = [bpath], EXPLICIT
    elif choice == "auto" and hdir is not None and (pin := pinned_for(hdir, record)) is not None:
        try:
            bpath = resolve_run(pin["run_id"], hdir)
        except ConfigError:
            warn.append(f"the pinned baseline {pin['run_id']} is not in {hdir}; using the pooled baseline")
        else:
            if pin["run_id"] == record.run_id:
                warn.append("the run is itself the pinned baseline; using the pooled baseline")
            else:
                base_paths, mode = [bpath], PINNED
    if mode == NONE:
        cands = _group(frame, record) if frame is not None else pd.DataFrame()
        if cands.empty:
            reason = (f"no earlier passing run of environment {record.environment!r}, profile "
                      f"{record.profile!r} and this script content ({_short(_script_key(record))})"
                      + (f" in {hdir}" if hdir else " (no history given)"))
        else:
            builder = _PoolBuilder(cands, settings, loader)
            chosen, skipped = builder.pool_before(len(cands))
            excluded = [{"run_id": cands.loc[j, "run_id"], "reason": builder.flag(j)[1]} for j in skipped]
            if chosen:
                base_paths, mode = [Path(cands.loc[j, "path"]) for j in chosen], POOLED
            else:
                reason = (f"every earlier passing run of this environment, profile and script "
                          f"({len(cands)}) was flagged as a regression; pin a baseline "
                          f"(hardening baseline pin RUN)")
    base_records = [read_record(p) for p in base_paths]
    if mode in (PINNED, EXPLICIT):
        b = base_records[0]
        if _pin_key(b) != _pin_key(record):
            warn.append(f"baseline {b.run_id} differs from the run in environment, profile or script content")
    if mode == NONE:
        return Verdict(run=record.run_id, baseline=[], baseline_mode=NONE,
                       series=[SeriesResult(OVERALL, OVERALL, None, 0, 0, note="no baseline")],
                       errors=ErrorResult(note="no baseline"), settings=settings, excluded=excluded,
                       warnings=warn, environment=record.environment, profile=record.profile,
                       script_sha256=record.script_sha256, reason=reason)
    cur = loader.get(run_path, record)
    base = [loader.get(p, r) for p, r in zip(base_paths, base_records, strict=True)]
    series, errors, notes = _compare_runs(cur, base, settings)
    return Verdict(run=record.run_id, baseline=[r.run_id for r in base_records], baseline_mode=mode,
                   series=series, errors=errors, settings=settings, excluded=excluded, warnings=warn + notes,
                   environment=record.environment, profile=record.profile, script_sha256=record.script_sha256)


def judge_run(run_dir: str | os.PathLike[str], history_dir: str | os.PathLike[str] | None = None,
              baseline: str | os.PathLike[str] | None = None, settings: JudgeSettings | None = None) -> Verdict:
    """Judge a run folder against its history folder (default: the run's parent folder).

    For ``hardening loadtest --fail-on-regression``: ``verdict.regression`` / ``verdict.exit_code``; store the
    verdict with :func:`write_verdict` so later runs leave a flagged run out of their baselines.
    """
    if history_dir is None:
        history_dir = resolve_run(run_dir).parent
    return judge(run_dir, history_dir, baseline, settings)


def _flag_text(series: list[SeriesResult], errors: ErrorResult) -> str:
    """``latency overall +10.2%`` / ``errors 2.00% vs 0.00%``, the first regressed series and a count of the rest."""
    bad = [s for s in series if s.regression]
    parts = []
    if bad:
        more = f" and {len(bad) - 1} more series" if len(bad) > 1 else ""
        parts.append(f"latency {bad[0].series} {units.pct(bad[0].relative, sign=True)}{more}")
    if errors.regression:
        parts.append(f"errors {units.pct(errors.rate)} vs {units.pct(errors.baseline_rate)}")
    return "; ".join(parts)


def _short(key: str) -> str:
    return key if key.startswith("path:") else f"sha256 {key[:12]}"
