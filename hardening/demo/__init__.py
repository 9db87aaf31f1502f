"""The demo: a small payments service backed by Redis, an embedded Redis, the demo k6 script and SLO file,
and the seed's environments (branches and secrets).

Nothing outside this package knows about payments; the script and SLO file ship as package data, so
``hardening demo`` works from any directory of an installed package.
"""

from importlib import resources
from pathlib import Path

DEMO_DIR = Path(str(resources.files(__name__)))
DEMO_SCRIPT = DEMO_DIR / "k6-slo-test.js"
DEMO_SLO = DEMO_DIR / "slo.json"
DEMO_ENVIRONMENTS = DEMO_DIR / "environments.yml"
