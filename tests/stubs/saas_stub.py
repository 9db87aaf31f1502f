"""Stand-ins for SaaS CLIs (vercel, railway, gh) that cannot run here: no accounts, no network.

Each call appends one JSON line to the file named by ``HARDENING_STUB_LOG``:
``{"tool": "vercel", "argv": [...], "token_in_env": true}`` (whether the token variable was set, never
its value). Behaviour knobs (environment):
- ``STUB_VERCEL_ADDRESS``: URL ``vercel deploy`` prints (default https://stub-<n>.vercel.app);
- ``STUB_RAILWAY_ID``: deployment id printed in ``railway up``'s build-logs URL;
- ``STUB_GH_ISSUES``: JSON list ``gh issue list`` prints (default ``[]``);
- ``STUB_FAIL``: a sub-command name (e.g. ``deploy``) that exits 1.
"""

from __future__ import annotations

import json
import os
import sys

TOKENS = {"vercel": "VERCEL_TOKEN", "railway": "RAILWAY_TOKEN", "gh": "GH_TOKEN"}


def main(tool: str) -> int:
    argv = sys.argv[1:]
    log = os.environ.get("HARDENING_STUB_LOG")
    calls = 0
    if log:
        if os.path.exists(log):
            with open(log, encoding="utf-8") as fh:
                calls = sum(1 for _ in fh)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"tool": tool, "argv": argv,
                                 "token_in_env": bool(os.environ.get(TOKENS[tool]))}) + "\n")
    sub = argv[0] if argv else ""
    if sub and sub == os.environ.get("STUB_FAIL"):
        print(f"{tool} {sub}: simulated failure", file=sys.stderr)
        return 1
    if tool == "vercel" and sub == "deploy":
        print("Vercel CLI (stub)", file=sys.stderr)
        print(os.environ.get("STUB_VERCEL_ADDRESS") or f"https://stub-{calls}.vercel.app")
    elif tool == "railway" and sub == "up":
        dep = os.environ.get("STUB_RAILWAY_ID", f"00000000-0000-4000-8000-{calls:012d}")
        print(f"Build Logs: https://railway.com/project/p/service/s?id={dep}")
    elif tool == "gh" and argv[:2] == ["issue", "list"]:
        print(os.environ.get("STUB_GH_ISSUES", "[]"))
    elif tool == "gh" and argv[:2] == ["issue", "create"]:
        print("https://github.com/owner/repo/issues/101")
    return 0
