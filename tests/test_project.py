"""Project hygiene: environment.yml stays consistent with pyproject.toml; the run record's file names are
spelled in one module (hardening/record/layout.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from hardening.record.layout import RunLayout
from tests.conftest import ROOT

CONDA_NAMES = {"redis": "redis-py"}  # PyPI name -> conda-forge name where they differ


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_split(r) for r in project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.update(_split(p) for p in dep["pip"] if not p.startswith("-e"))
        else:
            name, spec = _split(dep)
            conda[name] = spec
    assert "-e .[dev]" in next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    for name, spec in wanted.items():
        conda_name = CONDA_NAMES.get(name, name)
        found = conda.get(conda_name, pip.get(name))
        assert found is not None, f"{name} from pyproject.toml is missing in environment.yml"
        assert found == spec, f"{name}: pyproject says {spec!r}, environment.yml says {found!r}"
    extra = (set(conda) - {"python", "pip"} - {CONDA_NAMES.get(n, n) for n in wanted}) | (set(pip) - set(wanted))
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {sorted(extra)}"


LAYOUT_MODULE = ROOT / "hardening" / "record" / "layout.py"
# Also the names of other files (the user's loadtest/slo.json and the `hardening init` starter, report side
# files *.summary.json, each k6 instance's own summary.json), which other modules rightly name.
SHARED_NAMES = {"slo.json", "summary.json"}
FOLDER_NAMES = {"k6", "redis", "instance-1"}  # folders of the record, not files


def _record_file_names() -> set[str]:
    """Every file name the layout defines, read from RunLayout and its RedisLayout (instance_* with 1)."""
    layout = RunLayout(Path("r"))
    names = set()
    for obj in (layout, layout.redis):
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            value = getattr(obj, attr)
            if attr.startswith("instance_"):
                value = value(1)
            if isinstance(value, Path) and value != layout.root:
                names.add(value.name)
    return names - SHARED_NAMES - FOLDER_NAMES


def test_run_record_file_names_are_spelled_only_in_layout():
    names = _record_file_names()
    assert {"run.json", "k6-stdout.log", "samples.parquet", "timeline.jsonl"} <= names, names
    offenders = []
    for path in sorted((ROOT / "hardening").rglob("*")):
        if path.suffix not in {".py", ".ipynb", ".j2"} or path == LAYOUT_MODULE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            offenders += [f"{path.relative_to(ROOT)}:{number}: {name}" for name in sorted(names)
                          if re.search(rf"(?<![\w.-]){re.escape(name)}", line)]  # the name, not a longer one
    assert not offenders, ("run-record file names spelled outside hardening/record/layout.py (name them through "
                           "RunLayout / RedisLayout):\n" + "\n".join(offenders))
