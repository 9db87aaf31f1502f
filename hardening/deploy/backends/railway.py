"""Railway command backend (backend service).

Railway's CLI has no ``rollback`` command. Deploy is ``railway up <release dir> --service S
--environment E --ci`` (token: ``RAILWAY_TOKEN`` in the environment). Rollback, in order of preference:
1. the GraphQL mutation ``deploymentRollback(id)`` when the last green deployment's Railway id is known
   and ``RAILWAY_API_TOKEN`` is set (endpoint overridable with ``HARDENING_RAILWAY_GRAPHQL``);
2. otherwise ``railway up`` of the last green artifact (a redeploy of the previous version).
``railway redeploy`` only restarts the *latest* deployment, so it is not used for rollback.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from hardening.deploy.artifacts import safe_extract
from hardening.deploy.backends import Outcome, Release, run_cli
from hardening.errors import InfraError
from hardening.masking import mask

GRAPHQL_ENDPOINT = "https://backboard.railway.com/graphql/v2"
ROLLBACK_MUTATION = "mutation deploymentRollback($id: String!) { deploymentRollback(id: $id) }"
_DEPLOYMENT_ID = re.compile(r"[?&]id=([0-9a-fA-F-]{8,})")


def graphql_rollback(deployment_id: str, token: str, endpoint: str = GRAPHQL_ENDPOINT,
                     timeout_s: float = 30) -> None:
    """Call ``deploymentRollback(id)``; raise InfraError with Railway's message on failure."""
    body = json.dumps({"query": ROLLBACK_MUTATION, "variables": {"id": deployment_id}}).encode()
    request = urllib.request.Request(endpoint, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            answer = json.loads(resp.read() or b"{}")
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise InfraError(f"Railway GraphQL deploymentRollback failed: {mask(str(exc))}") from None
    if answer.get("errors"):
        raise InfraError(f"Railway GraphQL deploymentRollback: {mask(json.dumps(answer['errors']))[:400]}")


class RailwayBackend:
    name = "railway"
    reports_version = False

    def __init__(self, env: str, *, service: str, public_url: str | None = None, cli: str = "railway",
                 environ: Mapping[str, str] | None = None, timeout_s: float = 900) -> None:
        self.env, self.service, self.public_url, self.cli = env, service, public_url, cli
        self.environ = dict(os.environ if environ is None else environ)
        self.timeout_s = timeout_s

    def deploy(self, release: Release) -> Outcome:
        with tempfile.TemporaryDirectory(prefix=f"railway-{release.version}-") as tmp:
            safe_extract(release.tarball, Path(tmp))
            out = run_cli([self.cli, "up", tmp, "--service", self.service, "--environment", self.env, "--ci"],
                          env=self.environ, timeout_s=self.timeout_s)
        found = _DEPLOYMENT_ID.findall(out)
        ref = found[-1] if found else None
        return Outcome(self.public_url, ref, f"railway deployment {ref or '(id not printed)'}")

    def rollback(self, version: str, ref: str | None, release: Release | None) -> Outcome:
        token = self.environ.get("RAILWAY_API_TOKEN")
        if ref and token:
            endpoint = self.environ.get("HARDENING_RAILWAY_GRAPHQL", GRAPHQL_ENDPOINT)
            graphql_rollback(ref, token, endpoint)
            return Outcome(self.public_url, ref, f"railway deploymentRollback {ref}")
        if release is None:
            raise InfraError(f"cannot roll back Railway to {version}: no deployment id with RAILWAY_API_TOKEN, "
                             "and no artifact to redeploy")
        return self.deploy(release)
