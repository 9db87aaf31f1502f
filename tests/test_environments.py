"""Environments: ref -> environment map, required secrets checked by name, values never printed."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hardening.demo import DEMO_ENVIRONMENTS
from hardening.deploy import environments
from hardening.errors import ConfigError
from tests.conftest import ROOT, hardening_cmd

SEED = environments.load_config(DEMO_ENVIRONMENTS)
SEED_SECRETS = SEED.required_secrets["production"]


@pytest.mark.parametrize(("ref", "env"), [
    ("refs/heads/main", "production"), ("main", "production"), ("refs/heads/pinithi", "staging"),
])
def test_demo_map_is_the_seeds(ref, env):
    assert environments.resolve(ref, SEED) == env
    assert len(SEED_SECRETS) == 8 and SEED.required_secrets["staging"] == SEED_SECRETS


def test_built_in_default_knows_main_only_and_requires_nothing_unnamed():
    assert environments.resolve("refs/heads/main") == "production"
    with pytest.raises(ConfigError, match="maps to no environment in the built-in default"):
        environments.resolve("refs/heads/pinithi")
    with pytest.raises(ConfigError, match="--require NAME"):  # a check that checks nothing does not pass
        environments.check_secrets("production", environ={})


def test_repository_map_is_the_demos():
    """This repository's own deploy/environments.yml (what its workflow reads) is the demo's file."""
    assert (ROOT / environments.DEFAULT_CONFIG).resolve() == DEMO_ENVIRONMENTS.resolve()


def test_unknown_branch_and_tags_are_refused():
    with pytest.raises(ConfigError, match="maps to no environment"):
        environments.resolve("refs/heads/feature/x", SEED)
    with pytest.raises(ConfigError, match="not a branch"):
        environments.resolve("refs/tags/v1.0")


def test_config_file_patterns_and_default(tmp_path):
    cfg = tmp_path / "envs.yaml"
    cfg.write_text("branches:\n  main: production\n  'release/*': staging\ndefault: preview\n"
                   "required_secrets:\n  production: [JWT_SECRET, REDIS_URL]\n  staging: [REDIS_URL]\n")
    config = environments.load_config(cfg)
    assert environments.resolve("refs/heads/release/2.1", config) == "staging"
    assert environments.resolve("refs/heads/feature/y", config) == "preview"
    cfg.write_text("branchez: {}\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        environments.load_config(cfg)


def test_check_names_missing_and_empty():
    env = {"RAILWAY_TOKEN": "tok-abc-123456", "REDIS_URL": "", "JWT_SECRET": "   "}
    result = environments.check_secrets("production", SEED, environ=env)
    assert "RAILWAY_TOKEN" in result.present
    assert {"REDIS_URL", "JWT_SECRET", "VERCEL_TOKEN"} <= set(result.missing)
    assert not result.ok
    assert "tok-abc-123456" not in environments.check_report(result)
    with pytest.raises(ConfigError, match="unknown environment"):
        environments.check_secrets("qa", SEED, environ=env)


def test_cli_resolve_and_check_never_print_values(tmp_path, cli_env):
    planted = {name: f"planted-{name.lower()}-Zq81x" for name in SEED_SECRETS}
    planted["REDIS_URL"] = "redis://default:planted-redis-pw-Zq81x@127.0.0.1:6379/0"
    env = {**cli_env, **planted, "GITHUB_OUTPUT": str(tmp_path / "out.txt")}

    def run(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*hardening_cmd(), *args], env=environ, capture_output=True, text=True,
                              timeout=60, check=False, cwd=tmp_path)

    # no deploy/environments.yml here: the built-in default
    assert run("env", "resolve", "--ref", "refs/heads/pinithi", environ=env).returncode == 2
    unnamed = run("env", "check", "--env", "production", environ=env)
    assert unnamed.returncode == 2 and "--require NAME" in unnamed.stderr, unnamed.stderr
    assert run("env", "check", "--env", "production", "--require", "JWT_SECRET", environ=env).returncode == 0

    (tmp_path / "deploy").mkdir()
    shutil.copyfile(DEMO_ENVIRONMENTS, tmp_path / environments.DEFAULT_CONFIG)
    resolved = run("env", "resolve", "--ref", "refs/heads/pinithi", environ=env)
    assert resolved.returncode == 0 and resolved.stdout.strip() == "staging"
    assert "using environment config deploy/environments.yml" in resolved.stderr
    assert "environment=staging" in (tmp_path / "out.txt").read_text()
    assert run("env", "resolve", "--ref", "refs/heads/nope", environ=env).returncode == 2

    ok = run("env", "check", "--env", "production", environ=env)
    assert ok.returncode == 0, ok.stderr
    partial = {k: v for k, v in env.items() if k not in ("JWT_SECRET", "VERCEL_TOKEN")}
    missing = run("env", "check", "--env", "production", environ=partial)
    assert missing.returncode == 1
    assert "JWT_SECRET" in missing.stdout + missing.stderr and "VERCEL_TOKEN" in missing.stderr
    for proc in (ok, missing):
        text = proc.stdout + proc.stderr
        assert "Zq81x" not in text, "a secret value was printed"
