"""Shared fixtures: real servers on loopback, started and stopped by pid."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from hardening.demo.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def redis_server():
    """A fresh embedded Redis/Valkey (see hardening.demo.embedded_redis for which binary)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the ``hardening`` CLI as a subprocess."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("REDIS_URL", None)
    return env


def hardening_cmd() -> list[str]:
    exe = shutil.which("hardening", path=str(VENV_BIN))
    return [exe] if exe else [sys.executable, "-m", "hardening"]
