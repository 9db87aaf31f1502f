"""k6's raw per-request output -> the record's compact columnar samples (``RunLayout.samples``) and
per-second aggregates (``RunLayout.per_second``).

``k6 run --out json=FILE`` writes one JSON object per line (NDJSON, optionally ``.gz``): ``{"type":"Metric"}``
lines describe a metric (its name and type), ``{"type":"Point"}`` lines carry one sample each. A million requests
are 3-4 GB of it, so ingestion streams: the file is read in chunks of whole lines, pyarrow's C++ JSON reader
parses each chunk (in parallel blocks) with an explicit schema for the known fields (floats and nanosecond
timestamps parsed exactly), and rows accumulate into zstd Parquet row groups. Memory stays bounded by the chunk
and row-group size, not by the file size.

Every tag k6 writes is kept: the eight tags that readers filter on most (``TAG_COLUMNS``) are columns of their
own, every other tag (``url``, ``proto``, custom tags such as ``my_tag``, scenario-level tags, ...) is an entry of
one ``tags`` column of type ``map<string, string>``. The Parquet schema is therefore the same for every file,
fixed before the first row group, whatever tags a script invents. ``load_samples(path, tags=[...])`` hands any
tag back as a column of its own. Tag names are discovered as the file is read: a chunk's new names are declared
as strings for the following chunks, so a value is kept exactly as written (never re-typed as a timestamp).

A file cut mid-line (k6 killed while writing) is ingested up to its last complete line and reported in
``IngestStats.truncated_lines`` / ``warnings``; a gzip stream that ends early, or turns corrupt, is read up to
where it stops (every complete line decompressed before it is kept) with a warning. A corrupt line anywhere else
raises ``ConfigError`` naming the line number; the destination is then left untouched.

``ingest_k6_csv`` does the same for ``--out csv`` (pyarrow's streaming CSV reader; ``extra_tags`` ``k=v&k2=v2``
into the same ``tags`` map); JSON is the exact format. ``ingest_k6_outputs`` merges several files of either
format (plain or gzip) into one samples file, one file at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import itertools
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
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
TAGS_COLUMN = "tags"  # map<string, string>: every tag that is not one of TAG_COLUMNS
TAGS_TYPE = pa.map_(pa.string(), pa.string())
_TAG_SET = frozenset(TAG_COLUMNS)

SAMPLES_SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("metric", pa.dictionary(pa.int32(), pa.string())),
        ("value", pa.float64()),
        *[(tag, pa.string()) for tag in TAG_COLUMNS],
        (TAGS_COLUMN, TAGS_TYPE),
    ]
)
# Parquet key-value metadata written when the file is complete (JSON values)
META_EXTRA_TAGS = b"hardening.extra_tags"  # sorted names found in the tags map
META_METRIC_TYPES = b"hardening.metric_types"  # {metric: trend|counter|rate|gauge} from k6's Metric lines

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
# Tags that tell load generators apart: `hardening loadtest --instances N` sets `instance` on every sample of each
# k6, the k6-operator sets `instance_id` on each runner's (`hardening import` of its runners' outputs).
INSTANCE_TAG = "instance"
GENERATOR_TAGS = (INSTANCE_TAG, "instance_id")
PER_SECOND_METRICS = ("http_reqs", "http_req_failed", "http_req_duration", "vus", "iterations")

# Tags that k6 writes as columns of its CSV output besides TAG_COLUMNS; they go to the tags map like extra_tags.
CSV_TAG_COLUMNS = ("error", "proto", "service", "subproto", "tls_version", "url")


def _line_schema(extra_tags: Sequence[str] = ()) -> pa.Schema:
    """What pyarrow reads from each JSON line: the known fields, with every tag name seen so far as a string.
    Any other field (a tag not seen yet, ``contains``, ``submetrics``...) is inferred while parsing."""
    return pa.schema(
        [
            ("type", pa.string()),
            ("metric", pa.string()),
            (
                "data",
                pa.struct(
                    [
                        ("time", pa.string()),  # RFC3339Nano; cast below (faster than parsing it in the reader)
                        ("value", pa.float64()),
                        ("tags", pa.struct([(tag, pa.string()) for tag in (*TAG_COLUMNS, *extra_tags)])),
                        ("name", pa.string()),  # Metric lines
                        ("type", pa.string()),  # Metric lines
                    ]
                ),
            ),
        ]
    )


BLOCK_BYTES = 1 << 20  # parse unit of the JSON reader (blocks of one chunk are parsed in parallel)
CHUNK_BYTES = 8 << 20  # whole lines handed to the JSON reader at a time
ROW_GROUP_ROWS = 512 * 1024  # rows per Parquet row group (bounds memory while writing)
_GZIP_MAGIC = b"\x1f\x8b"

Progress = Callable[[int, int], None]  # (bytes of the source files consumed, total bytes of the source files)


@dataclass
class IngestStats:
    """What one ingestion read and wrote: ``lines`` parsed (complete ones), ``points`` = rows written,
    ``bytes`` of uncompressed k6 output ingested, wall ``seconds``, ``truncated_lines`` (a cut-off last line left
    out, per file), ``metric_types`` ``{metric: counter|gauge|rate|trend}`` from JSON Metric lines (CSV has none),
    ``extra_tags`` the names found in the ``tags`` map, ``first_time``/``last_time`` of the samples (UTC, None
    without samples), ``files`` ingested, ``warnings``."""

    lines: int = 0
    points: int = 0
    bytes: int = 0
    seconds: float = 0.0
    truncated_lines: int = 0
    metric_types: dict[str, str] = field(default_factory=dict)
    extra_tags: list[str] = field(default_factory=list)
    first_time: dt.datetime | None = None
    last_time: dt.datetime | None = None
    files: int = 0
    warnings: list[str] = field(default_factory=list)

    def _add(self, other: IngestStats) -> None:
        self.lines += other.lines
        self.points += other.points
        self.bytes += other.bytes
        self.truncated_lines += other.truncated_lines
        self.metric_types.update(other.metric_types)
        self.extra_tags = sorted({*self.extra_tags, *other.extra_tags})
        for name, pick in (("first_time", min), ("last_time", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else mine if theirs is None else pick(mine, theirs))
        self.files += other.files
        self.warnings.extend(other.warnings)



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



@dataclass
class _Converted:
    """One parsed block as samples rows, with what it tells about the run."""

    table: pa.Table
    metric_types: dict[str, str]
    dropped: int  # Points without metric, time or value
    extra_tags: list[str]  # names that appear in this block's tags map


_NO_STRINGS = pa.array([], pa.string())


def _as_strings(values: pa.Array) -> pa.Array:
    return values if values.type == pa.string() else values.cast(pa.string())


def _tags_map(names: Sequence[str], children: Sequence[pa.Array], n: int) -> tuple[pa.Array, list[str]]:
    """The ``tags`` map of ``n`` rows from one string array per tag name (null: the row has no such tag);
    entries in the order of ``names`` (sorted by the callers). Returns (map, names that occur)."""
    if not names:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), _NO_STRINGS, _NO_STRINGS), []
    valid = [child.is_valid().to_numpy(zero_copy_only=False) for child in children]
    counts = np.zeros(n, np.int32)
    for v in valid:
        counts += v
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    if len(valid) == 1:
        rows, which = np.flatnonzero(valid[0]), np.zeros(int(offsets[-1]), np.int64)
    else:
        rows, which = np.nonzero(np.stack(valid, axis=1))  # row-major: each row's entries together, in name order
    values = pa.concat_arrays([_as_strings(c) for c in children]).take(pa.array(which * n + rows))
    keys = pa.array(names, pa.string()).take(pa.array(which))
    present = [name for name, v in zip(names, valid, strict=True) if v.any()]
    return pa.MapArray.from_arrays(pa.array(offsets), keys, values), present


def _samples_table(when: Any, metric: Any, value: Any, tags: dict[str, Any], extra: pa.Array,
                   rows: Any = None) -> tuple[pa.Table, int]:
    """Rows with metric, time and value as ``SAMPLES_SCHEMA`` (only ``rows`` when given: a boolean mask), and
    how many of those lacked one of them. Arguments are arrays or chunked arrays of equal length."""
    complete = pc.and_(pc.and_(pc.is_valid(when), pc.is_valid(value)), pc.is_valid(metric))
    keep = complete if rows is None else pc.and_(complete, rows)
    wanted = len(metric) if rows is None else pc.sum(pc.cast(rows, pa.int64())).as_py() or 0
    kept = (pc.sum(pc.cast(keep, pa.int64())).as_py() or 0) if len(metric) else 0
    columns = [
        pc.cast(when, SAMPLES_SCHEMA.field("time").type, safe=False),  # ns -> us
        pc.dictionary_encode(metric).cast(SAMPLES_SCHEMA.field("metric").type),
        value,
        *[_as_strings(tags[tag]) for tag in TAG_COLUMNS],
        extra,
    ]
    table = pa.Table.from_arrays(columns, schema=SAMPLES_SCHEMA)
    return (table.filter(keep) if kept < len(metric) else table), wanted - kept


def _json_samples(chunk: pa.Table) -> _Converted:
    """One parsed JSON chunk -> samples rows, the metric types declared in it, Points dropped as incomplete."""
    kind = chunk.column("type")
    data = chunk.column("data")
    types: dict[str, str] = {}
    is_metric = pc.fill_null(pc.equal(kind, "Metric"), False)
    if pc.any(is_metric).as_py():
        declared = pc.filter(data, is_metric)
        names = pc.struct_field(declared, "name").to_pylist()
        for name, mtype in zip(names, pc.struct_field(declared, "type").to_pylist(), strict=True):
            if name:
                types[name] = mtype
    is_point = pc.fill_null(pc.equal(kind, "Point"), False)
    tags = pc.struct_field(data, "tags")
    extra_names = sorted(f.name for f in tags.type if f.name not in _TAG_SET)
    children = [pc.struct_field(tags, name).combine_chunks() for name in extra_names]
    extra, present = _tags_map(extra_names, children, len(chunk))
    table, dropped = _samples_table(
        pc.cast(pc.struct_field(data, "time"), pa.timestamp("ns", tz="UTC")),
        chunk.column("metric"),
        pc.struct_field(data, "value"),
        {tag: pc.struct_field(tags, tag) for tag in TAG_COLUMNS},
        extra,
        rows=None if pc.all(is_point).as_py() else is_point,
    )
    return _Converted(table, types, dropped, present)


def _ns_per_unit(latest: int) -> int:
    """Nanoseconds per unit of a unix timestamp that is ``latest`` (seconds, ms, us or ns since 1970)."""
    for limit, factor in ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3)):
        if latest < limit:
            return factor
    return 1


def _split_extra_tags(text: str) -> list[tuple[str, str]]:
    """k6's CSV ``extra_tags`` (``k=v&k2=v2``, nothing escaped) as pairs; a piece without ``=`` belongs to the
    value before it (a value that contained ``&``)."""
    pairs: list[list[str]] = []
    for piece in text.split("&"):
        key, sep, value = piece.partition("=")
        if sep or not pairs:
            pairs.append([key, value])
        else:
            pairs[-1][1] += "&" + piece
    return [(k, v) for k, v in pairs if k]


def _csv_tags_map(batch: pa.RecordBatch) -> tuple[pa.Array, list[str]]:
    """The ``tags`` map of a CSV block: k6's tag columns beyond TAG_COLUMNS plus the pairs of ``extra_tags``,
    each row's entries sorted by name (as the JSON side has them)."""
    n = batch.num_rows
    rows: list[pa.Array] = []
    keys: list[pa.Array] = []
    values: list[pa.Array] = []
    for name in CSV_TAG_COLUMNS:
        column = batch.column(name)
        if column.null_count < n:
            at = pc.indices_nonzero(column.is_valid())
            rows.append(at)
            keys.append(pa.array(np.full(len(at), name, dtype=object), pa.string()))
            values.append(column.take(at))
    extra = batch.column("extra_tags")
    if extra.null_count < n:
        pieces = pc.split_pattern(extra, "&")
        flat = pc.list_flatten(pieces)
        parent = pc.list_parent_indices(pieces)
        pair = pc.extract_regex(flat, r"(?s)^(?P<key>[^=]+)=(?P<value>.*)$")
        odd = pair.is_null()
        if pc.any(odd).as_py():  # a value with '&' in it (or a piece without a name): these rows one by one
            odd_rows = pc.unique(pc.filter(parent, odd))
            plain = pc.invert(pc.is_in(parent, odd_rows))
            texts = extra.take(odd_rows).to_pylist()
            split = [(at, key, value) for at, text in zip(odd_rows.to_pylist(), texts, strict=True)
                     for key, value in _split_extra_tags(text)]
            rows.append(pa.array([at for at, _, _ in split], pa.int64()))
            keys.append(pa.array([key for _, key, _ in split], pa.string()))
            values.append(pa.array([value for _, _, value in split], pa.string()))
            pair, parent = pc.filter(pair, plain), pc.filter(parent, plain)
        rows.append(parent)
        keys.append(pair.field("key"))
        values.append(pair.field("value"))
    if not rows:
        return _tags_map((), (), n)
    entries = pa.table({
        "row": pa.concat_arrays([r.cast(pa.int64()) for r in rows]),
        "key": pa.concat_arrays(keys),
        "value": pa.concat_arrays(values),
    }).sort_by([("row", "ascending"), ("key", "ascending")])
    counts = np.bincount(entries["row"].to_numpy(), minlength=n).astype(np.int32)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    present = sorted(pc.unique(entries["key"]).to_pylist())
    return (pa.MapArray.from_arrays(pa.array(offsets), entries["key"].combine_chunks(),
                                    entries["value"].combine_chunks()), present)


def _csv_samples(batch: pa.RecordBatch) -> _Converted:
    """One parsed CSV block -> samples rows, {} (CSV has no metric types), rows dropped as incomplete."""
    stamp = batch.column("timestamp")
    try:  # k6's default is unix seconds; unix_milli/micro/nano are told apart by magnitude
        number = pc.cast(stamp, pa.int64())
        when = pc.multiply(number, _ns_per_unit(pc.max(number).as_py() or 0)).cast(pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:  # rfc3339_nano
        when = pc.cast(stamp, pa.timestamp("ns", tz="UTC"))
    extra, present = _csv_tags_map(batch)
    table, dropped = _samples_table(when, batch.column("metric_name"), batch.column("metric_value"),
                                    {tag: batch.column(tag) for tag in TAG_COLUMNS}, extra)
    return _Converted(table, {}, dropped, present)


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


def _line_chunks(source: pa.NativeFile | _CompleteLines, size: int) -> Iterator[pa.Buffer]:
    """``source`` in pieces of whole lines, about ``size`` bytes each (a longer line makes a longer piece)."""
    if isinstance(source, pa.NativeFile) and source.seekable():
        yield from _file_line_chunks(source, size)
        return
    pending = b""
    eof = False
    while not eof:
        buf = bytearray(pending)
        want = len(pending) + size
        while len(buf) < want:
            piece = source.read(want - len(buf))
            if not piece:
                eof = True
                break
            buf += piece
        cut = len(buf) if eof else buf.rfind(b"\n") + 1
        pending = bytes(buf[cut:])
        if cut:
            yield pa.py_buffer(buf).slice(0, cut)


def _file_line_chunks(raw: pa.NativeFile, size: int) -> Iterator[pa.Buffer]:
    """Whole-line pieces of a plain file without copying them: read, cut after the last newline, seek back."""
    want = size
    while True:
        start = raw.tell()
        buf = raw.read_buffer(want)
        if not buf.size:
            return
        view = memoryview(buf)
        tail = bytes(view[-65536:]).rfind(b"\n")
        cut = (buf.size - min(buf.size, 65536) + tail + 1) if tail >= 0 else bytes(view).rfind(b"\n") + 1
        if buf.size < want or cut == buf.size:  # the end of the file, or a chunk that ends with its line
            yield buf
            if buf.size < want:
                return
        elif not cut:  # one line longer than the chunk
            want *= 2
            raw.seek(start)
            continue
        else:
            yield buf.slice(0, cut)
            raw.seek(start + cut)
        want = size


class _JsonChunkParser:
    """Parses chunks of k6 JSON lines; tag names first seen in a chunk are declared (as strings) from then on.

    Unknown fields are inferred by pyarrow, which is how new tag names show up. Inference can trip over other
    fields (k6's Metric lines carry ``submetrics`` lists, which pyarrow 26 sometimes cannot type when Points
    surround them: ArrowNotImplementedError). Such a chunk is parsed strictly instead (unknown fields ignored:
    every sample kept, in order), and its new tag names are looked for in its Point lines alone."""

    def __init__(self) -> None:
        self.extra_tags: list[str] = []
        self._options = self._make_options()

    def _make_options(self, behaviour: str = "infer") -> pj.ParseOptions:
        return pj.ParseOptions(explicit_schema=_line_schema(self.extra_tags), unexpected_field_behavior=behaviour)

    def _read(self, buf: pa.Buffer, options: pj.ParseOptions) -> pa.Table:
        return pj.read_json(pa.BufferReader(buf), read_options=pj.ReadOptions(block_size=BLOCK_BYTES),
                            parse_options=options)

    def _declare(self, table: pa.Table) -> tuple[bool, bool]:
        """Declare the chunk's new tag names: (any new, one of them typed as something else than a string)."""
        tags = table.schema.field("data").type.field("tags").type
        new = [f for f in tags if f.name not in _TAG_SET and f.name not in self.extra_tags]
        if not new:
            return False, False
        self.extra_tags = sorted({*self.extra_tags, *(f.name for f in new)})
        self._options = self._make_options()
        return True, any(not (pa.types.is_string(f.type) or pa.types.is_null(f.type)) for f in new)

    def parse(self, buf: pa.Buffer, lines_before: int, warnings: list[str]) -> pa.Table:
        """The chunk as a table (``pa.ArrowInvalid`` when a line is not JSON)."""
        try:
            table = self._read(buf, self._options)
        except pa.ArrowException as exc:
            strict = self._read(buf, self._make_options("ignore"))  # a corrupt line fails here too: the caller's
            return self._parse_points_apart(buf, strict, exc, lines_before, warnings)
        if self._declare(table)[1]:
            table = self._read(buf, self._options)  # e.g. an ISO date inferred as a timestamp: keep the text
        return table

    def _parse_points_apart(self, buf: pa.Buffer, strict: pa.Table, failure: pa.ArrowException,
                            lines_before: int, warnings: list[str]) -> pa.Table:
        # Metric lines out (a Point whose tag value is "Metric" only misses the discovery of its new tags)
        points = b"\n".join(line for line in buf.to_pybytes().split(b"\n") if b'"Metric"' not in line)
        try:
            found = self._read(pa.py_buffer(points), self._options) if points.strip() else None
        except pa.ArrowException:
            warnings.append(f"lines {lines_before + 1}-{lines_before + strict.num_rows}: fields that are not k6's "
                            f"own could not be typed ({failure}); samples kept, tags first seen in these lines are "
                            "missing")
            return strict
        if found is None or not self._declare(found)[0]:
            return strict
        return self._read(buf, self._make_options("ignore"))  # every sample, with the tags now declared


def _json_batches(source: pa.NativeFile | _CompleteLines, src: Path, stats: IngestStats
                  ) -> Iterator[pa.Table]:
    """Parsed JSON chunks of ``source``; a parse error becomes a ConfigError naming the line.

    The next chunk is read and parsed in a background thread while the caller converts and writes this one
    (pyarrow releases the GIL), so reading, parsing and writing overlap. Close the generator before closing
    ``source``: closing waits for the chunk in flight."""
    parser = _JsonChunkParser()
    chunks = _line_chunks(source, CHUNK_BYTES)
    parsed = [0]  # lines parsed by the worker (the consumer's count is stats.lines)

    def parse_next() -> tuple[pa.Buffer, pa.Table | None, pa.ArrowException | None] | None:
        buf = next(chunks, None)
        if buf is None:
            return None
        try:
            table = parser.parse(buf, parsed[0], stats.warnings)
        except pa.ArrowException as exc:
            return buf, None, exc
        parsed[0] += table.num_rows
        return buf, table, None

    failure: pa.ArrowException | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples-parser")
    inflight = pool.submit(parse_next)
    try:
        while (item := inflight.result()) is not None:
            buf, table, failure = item
            if failure is not None:
                if stats.lines == 0 and "empty" in str(failure).lower() and not bytes(buf).strip():
                    return  # an empty file: nothing to ingest (reported as "no samples")
                break
            inflight = pool.submit(parse_next)
            stats.lines += table.num_rows
            yield table
    finally:
        if not inflight.done():
            inflight.cancel()
        pool.shutdown(wait=True)
    if failure is None:
        return
    number, excerpt = _first_bad_line(src, stats.lines)
    where = f"line {number} ({excerpt!r})" if number else f"after line {stats.lines}"
    raise ConfigError(
        f"{src} is not valid k6 JSON output at {where}: {failure}. Only a cut-off last line is tolerated; "
        "re-run k6 or repair the file."
    ) from failure


_CSV_COLUMNS = {"metric_name": pa.string(), "timestamp": pa.string(), "metric_value": pa.float64(),
                **{tag: pa.string() for tag in (*TAG_COLUMNS, *CSV_TAG_COLUMNS, "extra_tags")}}


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
            self._writer = pq.ParquetWriter(
                str(tmp), SAMPLES_SCHEMA, compression="zstd",
                use_dictionary=["metric", *TAG_COLUMNS, f"{TAGS_COLUMN}.key_value.key",
                                f"{TAGS_COLUMN}.key_value.value"])
        except (OSError, pa.ArrowException) as exc:
            raise ConfigError(f"cannot write {dest}: {exc}") from exc
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="samples-writer")
        self._inflight: Future | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0
        self.metadata: dict[bytes, str] = {}  # added to the file's key-value metadata when it is complete

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
            if exc_type is None and self.metadata:
                self._writer.add_key_value_metadata(self.metadata)
        finally:
            self._pool.shutdown(wait=True)
            self._writer.close()


@dataclass(frozen=True)
class _Format:
    name: str
    line_complete: Callable[[bytes, bytes], bool]
    batches: Callable[..., Iterator[pa.RecordBatch]]
    to_samples: Callable[[pa.RecordBatch], _Converted]


_JSON = _Format("JSON", _json_line_complete, _json_batches, _json_samples)
_CSV = _Format("CSV", _csv_line_complete, _csv_batches, _csv_samples)


def ingest_k6_json(src: str | os.PathLike, dest_parquet: str | os.PathLike, *,
                   progress: Progress | None = None) -> IngestStats:
    """Stream k6 ``--out json`` output (plain or gzip) into ``dest_parquet`` (see ``SAMPLES_SCHEMA``).

    ``dest_parquet`` appears only when ingestion succeeded (written beside it, then renamed).
    ``progress(done_bytes, total_bytes)`` is called after each parsed block.
    """
    return _ingest([(Path(src), _JSON)], Path(dest_parquet), progress)


def ingest_k6_csv(src: str | os.PathLike, dest_parquet: str | os.PathLike, *,
                  progress: Progress | None = None) -> IngestStats:
    """Like ``ingest_k6_json`` for k6 ``--out csv`` output. k6 rounds CSV values to 6 decimals and, by default,
    times to whole seconds, empty tags become null, and ``metric_types`` stays empty: prefer JSON."""
    return _ingest([(Path(src), _CSV)], Path(dest_parquet), progress)


def ingest_k6_outputs(sources: Iterable[str | os.PathLike], dest_parquet: str | os.PathLike, *,
                      progress: Progress | None = None) -> IngestStats:
    """Merge several k6 outputs (``--out json`` or ``--out csv``, each plain or gzip, told apart by content) into
    one ``dest_parquet``, in the order given, one file at a time (memory as for one file). ``IngestStats`` sums
    them; a missing or corrupt file is a ``ConfigError`` and ``dest_parquet`` is then not written."""
    paths = [Path(s) for s in sources]
    if not paths:
        raise ConfigError("no k6 output file given")
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"k6 output file not found: {path}")
    return _ingest([(path, _detect_format(path)) for path in paths], Path(dest_parquet), progress)


def k6_output_format(src: str | os.PathLike) -> str:
    """``"json"`` or ``"csv"``: which k6 output ``src`` is, by its first bytes (gzip or not); ConfigError if
    neither."""
    return _detect_format(Path(src)).name.lower()


def _detect_format(src: Path) -> _Format:
    """JSON or CSV by the first bytes (decompressed for gzip); an empty file counts as JSON (no samples)."""
    try:
        with open(src, "rb") as fh:
            head = fh.read(4096)
            if head[:2] == _GZIP_MAGIC:
                head = zlib.decompressobj(wbits=31).decompress(head, 256)
    except (OSError, zlib.error) as exc:
        raise ConfigError(f"cannot read k6 output {src}: {exc}") from exc
    start = head.lstrip()
    if not start or start.startswith(b"{"):
        return _JSON
    if start.startswith(b"metric_name,"):
        return _CSV
    raise ConfigError(f"{src} is neither k6 JSON (--out json) nor k6 CSV (--out csv) output: it starts with "
                      f"{start[:40]!r}")


def _ingest(sources: list[tuple[Path, _Format]], dest: Path, progress: Progress | None) -> IngestStats:
    for src, _ in sources:
        if not src.is_file():
            raise ConfigError(f"k6 output file not found: {src}")
    started = time.perf_counter()
    stats = IngestStats()
    total = sum(src.stat().st_size for src, _ in sources)
    done = 0
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with _RowGroupWriter(tmp, dest) as writer:
            for src, fmt in sources:
                stats._add(_ingest_one(src, fmt, writer, progress, done, total))
                done += src.stat().st_size
            writer.metadata = {META_EXTRA_TAGS: json.dumps(stats.extra_tags),
                               META_METRIC_TYPES: json.dumps(stats.metric_types, sort_keys=True)}
        os.replace(tmp, dest)
    except OSError as exc:
        raise ConfigError(f"cannot write {dest}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    stats.seconds = time.perf_counter() - started
    if progress is not None:
        progress(total, total)
    return stats


def _ingest_one(src: Path, fmt: _Format, writer: _RowGroupWriter, progress: Progress | None, done: int,
                total: int) -> IngestStats:
    """Append the samples of one file to ``writer``; its stats and warnings."""
    stats = IngestStats(files=1)
    size = src.stat().st_size
    raw, source = _open_source(src, fmt.line_complete)
    dropped = 0
    extra_tags: set[str] = set()
    try:
        with contextlib.closing(fmt.batches(source, src, stats)) as batches:
            for batch in batches:
                try:
                    converted = fmt.to_samples(batch)
                except pa.ArrowInvalid as exc:
                    first = stats.lines - batch.num_rows + 1
                    raise ConfigError(f"{src}: a sample between lines {first} and {stats.lines} has a time that "
                                      f"k6 does not write: {exc}") from exc
                stats.metric_types.update(converted.metric_types)
                extra_tags.update(converted.extra_tags)
                dropped += converted.dropped
                table = converted.table
                if table.num_rows:
                    stats.points += table.num_rows
                    low, high = pc.min_max(table["time"]).values()
                    stats.first_time = low.as_py() if stats.first_time is None else min(stats.first_time, low.as_py())
                    stats.last_time = high.as_py() if stats.last_time is None else max(stats.last_time, high.as_py())
                writer.add(table)
                if progress is not None:
                    progress(done + raw.tell(), total)
    except ConfigError as exc:
        gunzip = source.gunzip if isinstance(source, _CompleteLines) else None
        if gunzip is None or not gunzip.corrupt:
            raise
        raise ConfigError(f"{src}: gzip stream is corrupt at compressed byte {gunzip.corrupt_at} of {size} "
                          f"({gunzip.corrupt}), and what deflate decoded just before it is garbage too: {exc}"
                          ) from exc
    finally:
        raw.close()
    stats.extra_tags = sorted(extra_tags)
    lines = source if isinstance(source, _CompleteLines) else None
    stats.bytes = lines.bytes if lines else size
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
        stats.warnings.append(f"{src}: gzip stream is corrupt at compressed byte {gunzip.corrupt_at} of {size} "
                              f"({gunzip.corrupt}; e.g. a tail zero-filled after a crash); ingested the "
                              f"{stats.lines} complete lines before it, nothing after it can be read")
    if dropped:
        stats.warnings.append(f"{src}: {dropped} samples without metric, time or value were skipped")
    if stats.points == 0:
        stats.warnings.append(f"{src}: no samples found")
    return stats


def sample_tag_names(path: str | os.PathLike) -> list[str]:
    """Every tag name a samples file (``RunLayout.samples``) holds: the tag columns, then the names found in
    the ``tags`` map (from the file's metadata; a file written elsewhere without it is scanned)."""
    return [*(name for name in TAG_COLUMNS), *sorted(_map_tag_names(Path(path)) or ())]


def _map_tag_names(path: Path, schema: pa.Schema | None = None) -> set[str] | None:
    """Names in the ``tags`` map (None: the file has no map column)."""
    schema = schema if schema is not None else pq.read_schema(path)
    if TAGS_COLUMN not in schema.names:
        return None
    recorded = (pq.read_metadata(path).metadata or {}).get(META_EXTRA_TAGS)
    if recorded is not None:
        return set(json.loads(recorded))
    names: set[str] = set()
    for chunk in pq.read_table(path, columns=[TAGS_COLUMN])[TAGS_COLUMN].chunks:
        names.update(pc.unique(chunk.keys).to_pylist())
    return names


def load_samples(path: str | os.PathLike, metrics: Iterable[str] | None = None,
                 columns: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> pd.DataFrame:
    """Read a samples file (``RunLayout.samples``) into pandas, reading only the row groups/pages of
    ``metrics`` and ``columns``.

    ``columns`` are the file's columns (default: all but the ``tags`` map; name ``"tags"`` to get it as dicts).
    ``tags`` are tag names to add as string columns, whether a tag column or an entry of the ``tags`` map (null
    where a sample lacks it); a name that the file never recorded is left out, so a caller can tell "tag not
    recorded" from "no sample has this value".
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"samples file not found: {path}")
    schema = pq.read_schema(path)
    wanted = list(columns) if columns is not None else [n for n in schema.names if n != TAGS_COLUMN]
    unknown = [c for c in wanted if c not in schema.names]
    if unknown:
        raise ConfigError(f"{path} has no column {', '.join(map(repr, unknown))} (columns: "
                          f"{', '.join(schema.names)}); a tag that is not a column is read with tags=[name]")
    requested = [t for t in dict.fromkeys(tags or ()) if t not in wanted]
    as_columns = [t for t in requested if t in _TAG_SET and t in schema.names]
    in_map = [t for t in requested if t not in as_columns]
    recorded = _map_tag_names(path, schema) if in_map else None
    in_map = [t for t in in_map if recorded is not None and t in recorded]
    read = [*wanted, *as_columns]
    if in_map and TAGS_COLUMN not in read:
        read.append(TAGS_COLUMN)
    filters = [("metric", "in", list(metrics))] if metrics is not None else None
    table = pq.read_table(path, columns=read, filters=filters)
    for tag in in_map:
        table = table.append_column(tag, pc.map_lookup(table[TAGS_COLUMN], pa.scalar(tag, pa.string()), "first"))
    if TAGS_COLUMN in read and TAGS_COLUMN not in wanted:
        table = table.drop_columns([TAGS_COLUMN])
    return table.to_pandas(maps_as_pydicts="strict")


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


def _test_vus(frame: pd.DataFrame) -> pd.Series:
    """The whole test's VUs in each second: k6's ``vus`` gauge, the highest value of each load generator in
    that second, summed over the generators (each k6 of a ``--instances`` run counts only its own segment's)."""
    vus = frame[frame["metric"] == "vus"]
    highest = vus.groupby(["second", "generator"], dropna=False)["value"].max()
    return highest.groupby(level="second").sum().rename("vus")


def per_second(samples: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """Per-second aggregates per scenario plus an ``"all"`` row per second (``PER_SECOND_SCHEMA`` columns).

    ``rps`` is requests in that one-second bucket; ``vus`` (a test-wide gauge) is set on ``"all"`` rows only:
    the whole test's VUs, summed over the load generators (``GENERATOR_TAGS``) of a split test.
    """
    columns = ["time", "metric", "value", "scenario"]
    if isinstance(samples, pd.DataFrame):
        frame = samples.loc[samples["metric"].isin(PER_SECOND_METRICS),
                            [*columns, *(t for t in GENERATOR_TAGS if t in samples.columns)]]
    else:
        frame = load_samples(samples, metrics=PER_SECOND_METRICS, columns=columns, tags=GENERATOR_TAGS)
    generator = next((frame[t].astype("object") for t in GENERATOR_TAGS if t in frame), None)
    frame = pd.DataFrame({
        "second": pd.to_datetime(frame["time"], utc=True).dt.floor("s"),
        "scenario": frame["scenario"].astype("object"),
        "metric": frame["metric"].astype("object"),
        "value": frame["value"].astype(float),
        "generator": generator,
    })
    if frame.empty:
        return PER_SECOND_SCHEMA.empty_table().to_pandas()
    scoped = _aggregate(frame[frame["scenario"].notna()], ["second", "scenario"])
    overall = _aggregate(frame, ["second"])
    overall.insert(1, "scenario", ALL_SCENARIOS)
    overall = overall.join(_test_vus(frame), on="second")
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
    """Compute ``per_second`` from the samples file ``samples_parquet`` and write it (zstd) to
    ``dest_parquet``; returns it."""
    frame = per_second(samples_parquet)
    dest = Path(dest_parquet)
    try:
        with atomic_path(dest) as tmp:
            table = pa.Table.from_pandas(frame, schema=PER_SECOND_SCHEMA, preserve_index=False)
            pq.write_table(table, tmp, compression="zstd")
    except OSError as exc:
        raise ConfigError(f"cannot write {dest}: {exc}") from exc
    return frame
