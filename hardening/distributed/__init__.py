"""Distributed load tests: one k6 test split across Kubernetes pods by the k6-operator (docs/distributed.md).

``operator`` writes the manifests (ConfigMap with the script, the SLO file and the threshold wrapper; a
``k6.io/v1alpha1`` TestRun; a ReadWriteMany volume for every runner's raw output; a collector pod). The
TestRun CRD's schema that the manifests are checked against is vendored in ``crd/`` (package data).
"""

from importlib import resources
from pathlib import Path

CRD_DIR = Path(str(resources.files(__name__))) / "crd"
TESTRUN_SCHEMA = CRD_DIR / "testrun.schema.json"
