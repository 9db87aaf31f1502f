"""k6's raw per-request output -> compact columnar ``samples.parquet`` and ``per_second.parquet``.

``k6 run --out json=FILE`` writes one JSON object per line (NDJSON, optionally ``.gz``): ``{"type":"Metric"}``
lines describe a metric, ``{"type":"Point"}`` lines carry one sample each. A million requests are 3-4 GB of it, so
ingestion streams: pyarrow's C++ JSON reader parses fixed-size blocks with an explicit schema (floats and
nanosecond timestamps parsed exactly) and each group of blocks becomes one zstd Parquet row group. Memory stays
bounded by the block and row-group size, not by the file size.

A file cut mid-line (k6 killed while writing) is ingested up to its last complete line and reported in
``IngestStats.truncated_lines`` / ``warnings``; a gzip stream that ends early, or turns corrupt, is read up to
where it stops (every complete line decompressed before it is kept) with a warning. A corrupt line anywhere else
raises ``ConfigError`` naming the line number; the destination is then left untouched.

``ingest_k6_csv`` does the same for ``--out csv`` (pyarrow's streaming CSV reader); JSON is the exact format.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pj
import pyarrow.parquet as pq

from hardening.atomic import atomic_path
from hardening.errors import ConfigError
from hardening.loadtest.k6stats import percentile_sorted

TAG_COLUMNS = ("scenario", "name", "method", "status", "expected_response", "check", "error_code", "group")

SAMPLES_SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("metric", pa.dictionary(pa.int32(), pa.string())),
        ("value", pa.float64()),
        *[(tag, pa.string()) for tag in TAG_COLUMNS],
    ]
)

PER_SECOND_SCHEMA = pa.schema(
    [
        ("second", pa.timestamp("s", tz="UTC")),
        ("scenario", pa.string()),
        ("requests", pa.int64()),
        ("errors", pa.int64()),
        ("error_rate", pa.float64()),
        ("rps", pa.float64()),
        ("p50_ms", pa.float64()),
        ("p95_ms", pa.float64()),
        ("p99_ms", pa.float64()),
        ("avg_ms", pa.float64()),
        ("vus", pa.float64()),
        ("iterations", pa.int64()),
    ]
)

ALL_SCENARIOS = "all"
PER_SECOND_METRICS = ("http_reqs", "http_req_failed", "http_req_duration", "vus", "iterations")

# What pyarrow reads from each line; every other field (url, proto, thresholds, ...) is ignored while parsing.
_LINE_SCHEMA = pa.schema(
    [
        ("type", pa.string()),
        ("metric", pa.string()),
        (
            "data",
            pa.struct(
                [
                    ("time", pa.string()),  # RFC3339Nano; cast below (faster than parsing it in the reader)
                    ("value", pa.float64()),
                    ("tags", pa.struct([(tag, pa.string()) for tag in TAG_COLUMNS])),
                    ("name", pa.string()),  # Metric lines
                    ("type", pa.string()),  # Metric lines
                ]
            ),
        ),
    ]
)

BLOCK_BYTES = 1 << 20  # parse unit of the JSON reader
ROW_GROUP_ROWS = 512 * 1024  # rows per Parquet row group (bounds memory while writing)
_GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int, int], None]  # (bytes of the source file consumed, total bytes of the source file)


@dataclass
class IngestStats:
    """What one ingestion read and wrote: ``lines`` parsed (complete ones), ``points`` = rows written,
    ``bytes`` of uncompressed k6 output ingested, wall ``seconds``, ``truncated_lines`` (0 or 1: a cut-off last
    line left out), ``metric_types`` ``{metric: counter|gauge|rate|trend}`` from JSON Metric lines, ``warnings``."""

    lines: int = 0
    points: int = 0
    bytes: int = 0
    seconds: float = 0.0
    truncated_lines: int = 0
    metric_types: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _json_line_complete(tail: bytes, header: bytes) -> bool:
    try:
        json.loads(tail)
    except ValueError:
        return False
    return True


def _csv_line_complete(tail: bytes, header: bytes) -> bool:
    return tail.count(b",") >= header.count(b",")


class _Gunzip:
    """Incremental gzip decompression of ``raw`` (one or more members) that keeps every byte it decompressed.

    A stream cut short (k6 killed: no trailer) ends where the data stops (``truncated``); a stream that turns
    corrupt (e.g. a tail zero-filled after a crash) ends just before the bad bytes (``corrupt`` says why and
    ``corrupt_at`` at which compressed byte). Deflate cannot resynchronize, so nothing after either is readable.
    """

    SALVAGE_STEPS = (4096, 64, 1)  # compressed bytes fed at a time to find the corrupt spot

    def __init__(self, raw: pa.NativeFile, chunk_bytes: int = 1 << 18) -> None:
        self._raw = raw
        self._chunk = chunk_bytes
        self._d = zlib.decompressobj(wbits=31)
        self._input = b""
        self._consumed = 0  # compressed bytes handed to zlib (for ``corrupt_at``)
        self._raw_eof = False
        self._in_member = False
        self._done = False
        self.truncated = False
        self.corrupt: str | None = None
        self.corrupt_at = 0

    def read(self, size: int) -> bytes:
        """Up to about ``size`` decompressed bytes; ``b""`` only at the end of what can be read."""
        while not self._done:
            if not self._input and not self._raw_eof:
                self._input = self._raw.read(self._chunk)
                self._raw_eof = not self._input
            if not self._in_member:
                self._input = self._input.lstrip(b"\0")  # zero padding between members (as gzip(1) allows)
                if not self._input:
                    self._done = self._raw_eof
                    continue
            if not self._input:  # the data stops inside a member: keep what it held
                self._done = self.truncated = True
                return self._d.flush()
            self._in_member = True
            saved = self._d.copy()
            try:
                out = self._d.decompress(self._input, size)
            except zlib.error as exc:
                self._done = True
                self.corrupt = str(exc)
                return self._salvage(saved, self._input)
            if self._d.eof:  # member complete (CRC and length checked by zlib); another may follow
                rest = self._d.unused_data
                self._d = zlib.decompressobj(wbits=31)
                self._in_member = False
            else:
                rest = self._d.unconsumed_tail
            self._consumed += len(self._input) - len(rest)
            self._input = rest
            if out:
                return out
        return b""

    def _salvage(self, state: Any, data: bytes) -> bytes:
        """The output of ``data`` up to the byte where it turns corrupt (``state``: a copy of the zlib state
        from before ``data``), found in ever smaller steps so nothing decodable before it is lost."""
        parts = []
        start, end = 0, len(data)
        for step in self.SALVAGE_STEPS:
            while start < end:
                trial = state.copy()
                try:
                    parts.append(trial.decompress(data[start:start + step]))
                except zlib.error:
                    end = min(end, start + step)  # the bad byte is inside this step: look at it more closely
                    break
                state = trial
                start += step
        self.corrupt_at = self._consumed + start
        return b"".join(parts)


class _CompleteLines(io.RawIOBase):
    """A read-only stream of ``raw`` that withholds a last line cut short (no newline and not ``complete``).

    Reading a ``_Gunzip`` source, a stream that ends early or turns corrupt is read up to where it stops.
    """

    def __init__(self, raw: pa.NativeFile | _Gunzip, complete: Callable[[bytes, bytes], bool],
                 chunk_bytes: int = 1 << 20) -> None:
        super().__init__()
        self._raw = raw
        self._complete = complete
        self._header = b""  # the first line (CSV header)
        self._chunk = chunk_bytes
        self._ready = memoryview(b"")
        self._pending = b""  # bytes after the last newline seen so far
        self._eof = False
        self.bytes = 0
        self.truncated_tail = b""

    @property
    def gunzip(self) -> _Gunzip | None:
        return self._raw if isinstance(self._raw, _Gunzip) else None

    def readable(self) -> bool:
        return True

    def _read_raw(self) -> bytes:
        return self._raw.read(self._chunk)

    def _fill(self) -> None:
        while not self._ready and not self._eof:
            chunk = self._read_raw()
            if not chunk:
                self._eof = True
                tail, self._pending = self._pending, b""
                if tail.strip():
                    if self._complete(tail, self._header or tail):
                        tail += b"\n"  # a complete line, only the final newline is missing
                    else:
                        self.truncated_tail = tail
                        tail = b""
                self._ready = memoryview(tail)
                return
            data = self._pending + chunk
            cut = data.rfind(b"\n") + 1
            if not self._header and cut:
                self._header = data[: data.index(b"\n")]
            self._pending = data[cut:]
            self._ready = memoryview(data)[:cut]

    def read(self, size: int = -1) -> bytes:
        self._fill()
        if size is None or size < 0:
            size = len(self._ready)
        out = bytes(self._ready[:size])
        self._ready = self._ready[size:]
        self.bytes += len(out)
        return out


def _open_source(src: Path, complete: Callable[[bytes, bytes], bool]
                 ) -> tuple[pa.NativeFile, pa.NativeFile | _CompleteLines]:
    """(file on disk, what the parser reads). A plain file that ends with a newline is read directly."""
    try:
        raw = pa.OSFile(str(src), "rb")
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read k6 output {src}: {exc}") from exc
    size = raw.size()
    compressed = raw.read(2) == _GZIP_MAGIC
    if not compressed and size:
        raw.seek(size - 1)
        if raw.read(1) == b"\n":
            raw.seek(0)
            return raw, raw
    raw.seek(0)
    return raw, _CompleteLines(_Gunzip(raw) if compressed else raw, complete)


def _samples_table(when: pa.Array, metric: pa.Array, value: pa.Array, tags: dict[str, pa.Array]
                   ) -> tuple[pa.Table, int]:
    """Rows with metric, time and value as ``SAMPLES_SCHEMA``, and how many lacked one of them."""
    complete = pc.and_(pc.and_(pc.is_valid(when), pc.is_valid(value)), pc.is_valid(metric))
    dropped = len(metric) - pc.sum(complete.cast(pa.int64())).as_py() if len(metric) else 0
    columns = [
        pc.cast(when, SAMPLES_SCHEMA.field("time").type, safe=False),  # ns -> us
        pc.dictionary_encode(metric).cast(SAMPLES_SCHEMA.field("metric").type),
        value,
        *[tags[tag] for tag in TAG_COLUMNS],
    ]
    table = pa.Table.from_arrays(columns, schema=SAMPLES_SCHEMA)
    return (table.filter(complete) if dropped else table), dropped


def _json_samples(batch: pa.RecordBatch) -> tuple[pa.Table, dict[str, str], int]:
    """One parsed JSON block -> (samples rows, metric types declared in it, Points dropped as incomplete)."""
    kind = batch.column("type")
    data = batch.column("data")
    types: dict[str, str] = {}
    is_metric = pc.fill_null(pc.equal(kind, "Metric"), False)
    if pc.any(is_metric).as_py():
        declared = pc.filter(data, is_metric)
        names = declared.field("name").to_pylist()
        for name, mtype in zip(names, declared.field("type").to_pylist(), strict=True):
            if name:
                types[name] = mtype
    is_point = pc.fill_null(pc.equal(kind, "Point"), False)
    points = pc.filter(data, is_point)
    tags = points.field("tags")
    table, dropped = _samples_table(
        pc.cast(points.field("time"), pa.timestamp("ns", tz="UTC")),
        pc.filter(batch.column("metric"), is_point),
        points.field("value"),
        {tag: tags.field(tag) for tag in TAG_COLUMNS},
    )
    return table, types, dropped


def _ns_per_unit(latest: int) -> int:
    """Nanoseconds per unit of a unix timestamp that is ``latest`` (seconds, ms, us or ns since 1970)."""
    for limit, factor in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
        if latest < limit:
            return factor
    return 1


def _csv_samples(batch: pa.RecordBatch) -> tuple[pa.Table, dict[str, str], int]:
    """One parsed CSV block -> (samples rows, {} (CSV has no metric types), rows dropped as incomplete)."""
    stamp = batch.column("timestamp")
    try:  # k6's default is unix seconds; unix_milli/micro/nano are told apart by magnitude
        number = pc.cast(stamp, pa.int64())
        when = pc.multiply(number, _ns_per_unit(pc.max(number).as_py() or 0)).cast(pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:  # rfc3339_nano
        when = pc.cast(stamp, pa.timestamp("ns", tz="UTC"))
    table, dropped = _samples_table(when, batch.column("metric_name"), batch.column("metric_value"),
                                    {tag: batch.column(tag) for tag in TAG_COLUMNS})
    return table, {}, dropped


def _first_bad_line(src: Path, skip_lines: int) -> tuple[int, str]:
    """Line number (1-based) and excerpt of the first line after ``skip_lines`` that is not valid JSON."""
    opener = gzip.open if _is_gzip(src) else open
    with opener(src, "rb") as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if number <= skip_lines or not line.strip():
                    continue
                try:
                    json.loads(line)
                except ValueError:
                    return number, line[:120].decode("utf-8", "replace")
        except (OSError, EOFError):
            pass
    return 0, ""


def _is_gzip(src: Path) -> bool:
    with open(src, "rb") as fh:
        return fh.read(2) == _GZIP_MAGIC


def _json_batches(source: pa.NativeFile | _CompleteLines, src: Path, stats: IngestStats
                  ) -> Iterator[pa.RecordBatch]:
    """Parsed JSON blocks of ``source``; a parse error becomes a ConfigError naming the line."""
    options = pj.ParseOptions(explicit_schema=_LINE_SCHEMA, unexpected_field_behavior="ignore")
    try:
        reader = pj.open_json(source, read_options=pj.ReadOptions(block_size=BLOCK_BYTES), parse_options=options)
    except pa.ArrowInvalid as exc:
        if stats.lines == 0 and "empty" in str(exc).lower():
            return  # an empty file: nothing to ingest (reported as "no samples")
        reader = None
        failure: pa.ArrowInvalid | None = exc
    while reader is not None:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            failure = exc
            break
        stats.lines += batch.num_rows
        yield batch
    number, excerpt = _first_bad_line(src, stats.lines)
    where = f"line {number} ({excerpt!r})" if number else f"after line {stats.lines}"
    raise ConfigError(
        f"{src} is not valid k6 JSON output at {where}: {failure}. Only a cut-off last line is tolerated; "
        "re-run k6 or repair the file."
    ) from failure


_CSV_COLUMNS = {"metric_name": pa.string(), "timestamp": pa.string(), "metric_value": pa.float64(),
                **{tag: pa.string() for tag in TAG_COLUMNS}}


def _csv_batches(source: pa.NativeFile | _CompleteLines, src: Path, stats: IngestStats
                 ) -> Iterator[pa.RecordBatch]:
    """Parsed CSV blocks of ``source`` (header first; an empty tag becomes null)."""
    convert = pacsv.ConvertOptions(column_types=_CSV_COLUMNS, include_columns=list(_CSV_COLUMNS),
                                   include_missing_columns=True, strings_can_be_null=True)
    try:
        reader = pacsv.open_csv(source, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES),
                                convert_options=convert)
    except pa.ArrowInvalid as exc:
        if "empty" in str(exc).lower():
            return
        raise ConfigError(f"{src} is not k6 CSV output: {exc}") from exc
    stats.lines = 1  # the header
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise ConfigError(f"{src} is not valid k6 CSV output after line {stats.lines}: {exc}. Only a cut-off "
                              "last line is tolerated; re-run k6 or repair the file.") from exc
        stats.lines += batch.num_rows
        yield batch


class _RowGroupWriter:
    """Collects sample tables and writes them as zstd row groups of ~ROW_GROUP_ROWS rows in a background thread
    (parsing the next blocks goes on meanwhile; at most one row group is being written at a time)."""

    def __init__(self, tmp: Path, dest: Path) -> None:
        try:
            self._writer = pq.ParquetWriter(str(tmp), SAMPLES_SCHEMA, compression="zstd",
                                            use_dictionary=["metric", *TAG_COLUMNS])
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"cannot write {dest}: {exc}") from exc
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples-writer")
        self._inflight: Future | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self._pending.append(table)
            self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._inflight is not None:
            self._inflight.result()
            self._inflight = None
        if self._pending_rows:
            group = pa.concat_tables(self._pending)
            self._inflight = self._pool.submit(self._writer.write_table, group, row_group_size=group.num_rows)
            self.rows += group.num_rows
            self._pending, self._pending_rows = [], 0

    def __enter__(self) -> _RowGroupWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self._flush()
            if self._inflight is not None:
                self._inflight.result()
        finally:
            self._pool.shutdown(wait=True)
            self._writer.close()


def ingest_k6_json(src: str | os.PathLike, dest_parquet: str | os.PathLike, *,
                   progress: Progress | None = None) -> IngestStats:
    """Stream k6 ``--out json`` output (plain or gzip) into ``dest_parquet`` (see ``SAMPLES_SCHEMA``).

    ``dest_parquet`` appears only when ingestion succeeded (written beside it, then renamed).
    ``progress(done_bytes, total_bytes)`` is called after each parsed block.
    """
    return _ingest(Path(src), Path(dest_parquet), progress, _json_line_complete, _json_batches, _json_samples)


def ingest_k6_csv(src: str | os.PathLike, dest_parquet: str | os.PathLike, *,
                  progress: Progress | None = None) -> IngestStats:
    """Like ``ingest_k6_json`` for k6 ``--out csv`` output. k6 rounds CSV values to 6 decimals and, by default,
    times to whole seconds, empty tags become null, and ``metric_types`` stays empty: prefer JSON."""
    return _ingest(Path(src), Path(dest_parquet), progress, _csv_line_complete, _csv_batches, _csv_samples)


def _ingest(src: Path, dest: Path, progress: Progress | None, line_complete: Callable[[bytes, bytes], bool],
            batches: Callable[..., Iterator[pa.RecordBatch]],
            to_samples: Callable[[pa.RecordBatch], tuple[pa.Table, dict[str, str], int]]) -> IngestStats:
    if not src.is_file():
        raise ConfigError(f"k6 output file not found: {src}")
    started = time.perf_counter()
    stats = IngestStats()
    total = src.stat().st_size
    raw, source = _open_source(src, line_complete)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    dropped = 0
    try:
        with _RowGroupWriter(tmp, dest) as writer:
            for batch in batches(source, src, stats):
                try:
                    table, types, lost = to_samples(batch)
                except pa.ArrowInvalid as exc:
                    first = stats.lines - batch.num_rows + 1
                    raise ConfigError(f"{src}: a sample between lines {first} and {stats.lines} has a time that "
                                      f"k6 does not write: {exc}") from exc
                stats.metric_types.update(types)
                dropped += lost
                writer.add(table)
                if progress is not None:
                    progress(raw.tell(), total)
        stats.points = writer.rows
        os.replace(tmp, dest)
    except OSError as exc:
        raise ConfigError(f"cannot write {dest}: {exc}") from exc
    except ConfigError as exc:
        gunzip = source.gunzip if isinstance(source, _CompleteLines) else None
        if gunzip is None or not gunzip.corrupt:
            raise
        raise ConfigError(f"{src}: gzip stream is corrupt at compressed byte {gunzip.corrupt_at} of {total} "
                          f"({gunzip.corrupt}), and what deflate decoded just before it is garbage too: {exc}"
                          ) from exc
    finally:
        raw.close()
        tmp.unlink(missing_ok=True)
    lines = source if isinstance(source, _CompleteLines) else None
    stats.bytes = lines.bytes if lines else total
    stats.seconds = time.perf_counter() - started
    if lines and lines.truncated_tail:
        stats.truncated_lines = 1
        stats.warnings.append(
            f"{src}: last line is cut off ({len(lines.truncated_tail)} bytes without a newline; k6 was probably "
            f"killed while writing); ingested the {stats.lines} complete lines before it"
        )
    gunzip = lines.gunzip if lines else None
    if gunzip and gunzip.truncated:
        stats.warnings.append(f"{src}: gzip stream ends early (k6 was probably killed while writing); ingested "
                              f"the {stats.lines} complete lines decompressed before the cut")
    if gunzip and gunzip.corrupt:
        stats.warnings.append(f"{src}: gzip stream is corrupt at compressed byte {gunzip.corrupt_at} of {total} "
                              f"({gunzip.corrupt}; e.g. a tail zero-filled after a crash); ingested the "
                              f"{stats.lines} complete lines before it, nothing after it can be read")
    if dropped:
        stats.warnings.append(f"{src}: {dropped} samples without metric, time or value were skipped")
    if stats.points == 0:
        stats.warnings.append(f"{src}: no samples found")
    if progress is not None:
        progress(total, total)
    return stats


def load_samples(path: str | os.PathLike, metrics: Iterable[str] | None = None,
                 columns: Iterable[str] | None = None) -> pd.DataFrame:
    """Read ``samples.parquet`` into pandas, reading only the row groups/pages of ``metrics`` and ``columns``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"samples file not found: {path}")
    filters = [("metric", "in", list(metrics))] if metrics is not None else None
    table = pq.read_table(path, columns=list(columns) if columns is not None else None, filters=filters)
    return table.to_pandas()


def _bounds(codes: np.ndarray) -> np.ndarray:
    """Start offsets of each run of equal values in sorted ``codes``, plus the end."""
    change = np.flatnonzero(np.diff(codes)) + 1
    return np.concatenate(([0], change, [len(codes)]))


def _group_percentiles(keys: pd.DataFrame, values: np.ndarray, ps: dict[str, float]) -> pd.DataFrame:
    """k6 percentiles of ``values`` per row-group of ``keys`` (one sort, then k6's interpolation per group)."""
    if len(values) == 0:
        return pd.DataFrame(columns=[*keys.columns, *ps])
    codes = keys.groupby(list(keys.columns), sort=True, observed=True).ngroup().to_numpy()
    order = np.lexsort((values, codes))
    codes, ordered = codes[order], values[order]
    bounds = _bounds(codes)
    firsts = order[bounds[:-1]]
    rows = {col: keys[col].to_numpy()[firsts] for col in keys.columns}
    for name, p in ps.items():
        rows[name] = [percentile_sorted(ordered[a:b], p) for a, b in itertools.pairwise(bounds)]
    return pd.DataFrame(rows)


def _aggregate(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The per-second columns for one grouping of ``frame`` (columns second, scenario, metric, value)."""

    def metric_rows(name: str) -> pd.DataFrame:
        return frame[frame["metric"] == name]

    def summed(name: str, column: str) -> pd.Series:
        rows = metric_rows(name)
        return rows.groupby(by, observed=True)["value"].sum().rename(column)

    duration = metric_rows("http_req_duration")
    parts = [
        summed("http_reqs", "requests"),
        summed("http_req_failed", "errors"),
        summed("iterations", "iterations"),
        duration.groupby(by, observed=True)["value"].mean().rename("avg_ms"),
        _group_percentiles(duration[by], duration["value"].to_numpy(float),
                           {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}).set_index(by),
    ]
    keys = frame[by].drop_duplicates().set_index(by).index
    out = pd.DataFrame(index=keys)
    for part in parts:
        out = out.join(part, how="left")
    return out.reset_index()


def per_second(samples: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Per-second aggregates per scenario plus an ``"all"`` row per second (``PER_SECOND_SCHEMA`` columns).

    ``rps`` is requests in that one-second bucket; ``vus`` (a test-wide gauge) is set on ``"all"`` rows only.
    """
    if isinstance(samples, pd.DataFrame):
        frame = samples.loc[samples["metric"].isin(PER_SECOND_METRICS), ["time", "metric", "value", "scenario"]]
    else:
        frame = load_samples(samples, metrics=PER_SECOND_METRICS, columns=["time", "metric", "value", "scenario"])
    frame = pd.DataFrame({
        "second": pd.to_datetime(frame["time"], utc=True).dt.floor("s"),
        "scenario": frame["scenario"].astype("object"),
        "metric": frame["metric"].astype("object"),
        "value": frame["value"].astype(float),
    })
    if frame.empty:
        return PER_SECOND_SCHEMA.empty_table().to_pandas()
    scoped = _aggregate(frame[frame["scenario"].notna()], ["second", "scenario"])
    overall = _aggregate(frame, ["second"])
    overall.insert(1, "scenario", ALL_SCENARIOS)
    vus = frame[frame["metric"] == "vus"].groupby("second")["value"].max().rename("vus")
    overall = overall.join(vus, on="second")
    out = pd.concat([overall, scoped], ignore_index=True)
    for column in ("requests", "errors", "iterations"):
        out[column] = out[column].fillna(0).astype("int64")
    out["error_rate"] = (out["errors"] / out["requests"]).where(out["requests"] > 0)
    out["rps"] = out["requests"].astype(float)
    out["second"] = out["second"].astype("datetime64[s, UTC]")
    out = out.sort_values(["second", "scenario"], key=_all_first, kind="stable").reset_index(drop=True)
    return out.reindex(columns=PER_SECOND_SCHEMA.names).astype(
        {name: "float64" for name in PER_SECOND_SCHEMA.names if PER_SECOND_SCHEMA.field(name).type == pa.float64()}
    )


def _all_first(column: pd.Series) -> pd.Series:
    if column.name == "scenario":
        return column.map(lambda s: (s != ALL_SCENARIOS, s))
    return column


def write_per_second(samples_parquet: str | os.PathLike, dest_parquet: str | os.PathLike) -> pd.DataFrame:
    """Compute ``per_second`` from ``samples.parquet`` and write it (zstd) to ``dest_parquet``; returns it."""
    frame = per_second(samples_parquet)
    dest = Path(dest_parquet)
    try:
        with atomic_path(dest) as tmp:
            table = pa.Table.from_pandas(frame, schema=PER_SECOND_SCHEMA, preserve_index=False)
            pq.write_table(table, tmp, compression="zstd")
    except OSError as exc:
        raise ConfigError(f"cannot write {dest}: {exc}") from exc
    return frame
