"""Redis/Valkey observability around a load test: snapshots, a sampler, a correct comparison.

``observe(url, out_dir)`` is the entry point for ``hardening loadtest``; the CLI (``hardening redis``)
uses ``Collector``, ``compare`` and ``render`` directly.
"""

from hardening.redisobs.compare import compare
from hardening.redisobs.observe import Observation, observe, summarize
from hardening.redisobs.report_md import render
from hardening.redisobs.snapshot import Collector

__all__ = ["Collector", "Observation", "compare", "observe", "render", "summarize"]
