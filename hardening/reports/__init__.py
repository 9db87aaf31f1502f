"""Reports: one module per report next to its notebook (``notebooks/<name>.ipynb``, package data).

- ``run_report``, ``redis_report``, ``slo_history``, ``deployments``: each a view model the notebook calls
  (``RunReport``, ``RedisReport``, ``SloHistory``, ``DeploymentsReport``) and the typed summary its last
  cell writes as a JSON side file (``RunReportSummary``, ...).
- ``style``: the one HTML style (notebook banners and ``index.html``), escaping, tables, the side-file writer.
- ``charts``: the matplotlib helpers every report's figures share.
- ``build``: papermill in-process, one reused HTMLExporter with the offline template, ``index.html``.
"""

from pathlib import Path

DEFAULT_LEDGER = Path("data/deployments/ledger.jsonl")  # used by `hardening report` when present
