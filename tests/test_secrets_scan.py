"""Secrets never reach what the tool writes: plant fake secrets, run build/deploy/rollback/loadtest/report
end to end, then scan every written file with detect-secrets and with a search for the planted values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from detect_secrets.transformers import get_transformed_file

from hardening.cli import build_parser
from hardening.net import free_port
from tests.test_deploy import FAST_HEALTH, REDIS_PASSWORD, STUBS, local_root  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# detect-secrets' entropy plugins also flag public high-entropy strings; these forms are excluded, nothing else:
# hex ids and digests (request ids, commit shas, sha256 of files), PNG charts embedded as base64 in the
# executed notebooks, and file paths inside the scanned tree itself.
PUBLIC_FORMS = [r"^[0-9a-f]{32}$", r"^[0-9a-f]{40}$", r"^[0-9a-f]{64}$", r"^iVBORw0KGgo"]


def _plain_lines(path: Path) -> bool:
    """detect-secrets reads ``path`` as plain lines: no INI/YAML transformer (eager or not) parses it."""
    try:
        with open(path) as fh:
            return get_transformed_file(fh) is None and get_transformed_file(fh, use_eager_transformers=True) is None
    except UnicodeDecodeError:
        return False


def scan_copy(work: Path, written: list[Path], copy: Path) -> dict[str, list[int]]:
    """Copy ``written`` into ``copy`` for one detect-secrets run, each distinct line once per file type.

    detect-secrets scans plain-text files line by line, and what it finds in a line depends only on the line
    and the file's extension (the next line's allowlist pragma aside: none is written). So a line already
    copied from a file with the same extension is left out of later files: the four HTML reports share
    ~7,000 lines of Jupyter's CSS, which made the scan take 20-30 s. Every distinct line of every written
    file is still scanned by every default plugin. Files a transformer parses (INI/YAML views), and files
    that would become parseable once thinned, are copied whole. Returns each copy's original line numbers.
    """
    seen: dict[str, set[str]] = {}
    origin: dict[str, list[int]] = {}
    for path in written:
        rel = path.relative_to(work)
        target = copy / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if not _plain_lines(path):
            continue                              # binary (skipped by detect-secrets too) or transformed
        lines = path.read_text().splitlines(keepends=True)
        known = seen.setdefault(path.suffix, set())
        kept = [(n, line) for n, line in enumerate(lines, 1) if line not in known and not known.add(line)]
        target.write_text("".join(line for _, line in kept))
        if not _plain_lines(target):              # thinned, it parses differently: scan it whole
            shutil.copyfile(path, target)
            continue
        origin[str(rel)] = [n for n, _ in kept]
    return origin


def _has_report_command() -> bool:
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    return "report" in commands


@pytest.mark.e2e
def test_no_secret_in_any_written_file(tmp_path, tmp_path_factory, shared_server, cli, cli_env,
                                       local_root):  # noqa: F811
    work = tmp_path
    secured_redis = shared_server("default", password=REDIS_PASSWORD)
    planted = {
        "JWT_SECRET": "jwt-Planted-Secret-7Qx2",
        "RAILWAY_TOKEN": "rw-Planted-Token-9Kd3",
        "VERCEL_TOKEN": "vc-Planted-Token-4Lm8",
        "GH_TOKEN": "ghp_PlantedGhToken5Zr1abcdefghij",
        "SUPABASE_KEY": "sb-Planted-Key-2Wy6",
        "MONGODB_URI": "mongodb+srv://app:Mongo-Planted-Pw-3Jt7@cluster.example.net/db",
        "REDIS_URL": f"redis://default:{REDIS_PASSWORD}@127.0.0.1:{secured_redis.port}/0",
    }

    def run_cli(args, cwd, env):
        """The real command, in-process (its children's output is captured too)."""
        return cli(*args, env=env, cwd=cwd)

    values = [v for k, v in planted.items() if k not in ("MONGODB_URI", "REDIS_URL")]
    values += ["Mongo-Planted-Pw-3Jt7", REDIS_PASSWORD]
    env = {**cli_env, **planted, "PATH": f"{STUBS}:{cli_env['PATH']}", "GITHUB_REPOSITORY": "o/r",
           "HARDENING_STUB_LOG": str(work / "stub-calls.jsonl"), "GITHUB_ACTOR": "octocat"}
    port = free_port()
    args = ["--env", "staging", "--backend", "local", "--root", str(local_root), "--port", str(port),
            "--ledger", "ledger.jsonl", "--artifacts-dir", "artifacts", "--incident-dir", "incidents", *FAST_HEALTH]

    for name, epoch, fault in (("good", 1768404645, None), ("bad", 1768404945, "DEMO_FAULT_UNHEALTHY=1\n")):
        src = work / name
        src.mkdir()
        (src / "app.txt").write_text(f"{name}\n")
        if fault:
            (src / "service.env").write_text(fault)
        built = run_cli(["artifact", "build", "--service", "backend", "--base", str(src), ".",
                         "--commit", f"{epoch:x}".ljust(40, "0"), "--out", "artifacts"], work,
                        {**env, "SOURCE_DATE_EPOCH": str(epoch)})
        assert built.returncode == 0, built.stderr
    good = sorted((work / "artifacts").glob("*.tar.gz"))[0]
    bad = sorted((work / "artifacts").glob("*.tar.gz"))[1]

    post_check = (f"{VENV_BIN / 'hardening'} loadtest --profile quick --out runs --warn-only --no-progress "
                  f"--script {ROOT / 'loadtest/k6-slo-test.js'} --slo {ROOT / 'loadtest/slo.json'}")
    outputs = []
    first = run_cli(["deploy", "--artifact", str(good), "--post-check", post_check, *args], work, env)
    outputs.append(first)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_cli(["deploy", "--artifact", str(bad), *args], work, env)
    outputs.append(second)
    assert second.returncode == 1 and "rolled back" in second.stderr
    manual = run_cli(["rollback", "--service", "backend", "--to", good.name.removesuffix(".tar.gz"), *args],
                     work, env)
    outputs.append(manual)
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert any(json.loads(line)["argv"][:2] == ["issue", "create"]
               for line in (work / "stub-calls.jsonl").read_text().splitlines())

    runs = [p for p in (work / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1, "the post-deploy load test wrote one run record"
    if _has_report_command():
        report = run_cli(["report", "--run", str(runs[0]), "--out", "reports", "--ledger", "ledger.jsonl"],
                         work, env)
        outputs.append(report)
        assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
        assert (work / "reports" / "index.html").exists()

    written = [p for p in work.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(written) > 15
    for path in written:
        data = path.read_bytes()
        for value in values:
            assert value.encode() not in data, f"planted secret found in {path.relative_to(work)}"
    for proc in outputs:
        for value in values:
            assert value not in proc.stdout + proc.stderr

    copy = tmp_path_factory.mktemp("scanned")
    origin = scan_copy(work, written, copy)
    scan = subprocess.run([str(VENV_BIN / "detect-secrets"), "scan", "--all-files",
                           "--exclude-secrets", "|".join([*PUBLIC_FORMS, "^" + re.escape(str(work))]), "."],
                          cwd=copy, capture_output=True, text=True, timeout=300, check=False)
    assert scan.returncode == 0, scan.stderr
    results = json.loads(scan.stdout)["results"]
    for name, found in results.items():          # line numbers of the written file, not of its copy
        for secret in found:
            if name in origin:
                secret["line_number"] = origin[name][secret["line_number"] - 1]
    assert results == {}, json.dumps(results, indent=1)[:3000]
