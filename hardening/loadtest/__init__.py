"""Load testing: the k6 runner, the wrapper that hands SLOs to any script, the SLO engine, raw samples.

The defaults below are here (not in ``runner``) so the CLI can build its parser without importing pandas.
"""

from pathlib import Path

DEFAULT_SCRIPT = Path("loadtest/k6-slo-test.js")
DEFAULT_SLO = Path("loadtest/slo.json")  # used when present in the working directory and --slo is not given
PROFILES = ("quick", "demo", "full")
