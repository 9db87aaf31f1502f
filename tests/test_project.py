"""Project hygiene: environment.yml stays consistent with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

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
