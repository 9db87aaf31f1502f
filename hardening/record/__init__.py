"""The run record: typed model (``model``), every path (``layout``), one writer, one reader.

Producers (the load test, ``hardening import``, test factories) write through
:class:`~hardening.record.writer.RunRecordWriter`; readers read through :mod:`hardening.record.reader`.
"""

from hardening.record.layout import RedisLayout, RunLayout
from hardening.record.model import (
    SCHEMA_VERSION,
    CustomMetric,
    GitInfo,
    K6Info,
    KeyMetrics,
    RunRecord,
    RunStatus,
    SloOrigin,
    SloResult,
    SloStatus,
)

__all__ = ["SCHEMA_VERSION", "CustomMetric", "GitInfo", "K6Info", "KeyMetrics", "RedisLayout", "RunLayout",
           "RunRecord", "RunStatus", "SloOrigin", "SloResult", "SloStatus"]
