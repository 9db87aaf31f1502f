"""Environments: which git ref deploys where, and which secrets each environment needs.

The repository says so in a YAML/JSON file: ``--config FILE``, else ``deploy/environments.yml`` in the
working directory when it exists (``find_config``)::

    branches:            # first match wins; fnmatch patterns allowed
      main: production
      "release/*": staging
    default: null        # environment for an unmatched branch (null = refuse)
    required_secrets:
      production: [RAILWAY_TOKEN, REDIS_URL, JWT_SECRET]
      staging: [RAILWAY_TOKEN, REDIS_URL]

Without a file, ``main`` deploys to ``production``, any other branch is refused, and no secret is required
until one is named (``required_secrets`` or ``env check --require NAME``). The demo's map (the seed's
branches and secrets) is ``hardening/demo/environments.yml``.

``check`` reports which required variables are missing or empty; it never prints a value.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hardening.errors import ConfigError

DEFAULT_CONFIG = Path("deploy/environments.yml")  # used when present in the working directory
DEFAULT_BRANCHES: dict[str, str] = {"main": "production"}


@dataclass(frozen=True)
class EnvironmentConfig:
    branches: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BRANCHES))
    default: str | None = None
    required_secrets: dict[str, list[str]] = field(default_factory=dict)
    source: str = "built-in default (main -> production)"  # what the map came from, for messages

    @property
    def environments(self) -> list[str]:
        return sorted({*self.branches.values(), *self.required_secrets, *([self.default] if self.default else [])})


@dataclass(frozen=True)
class SecretCheck:
    environment: str
    present: list[str]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing


def find_config(path: Path | None) -> Path | None:
    """``path`` when given, else ``deploy/environments.yml`` when the working directory has one, else None."""
    if path is not None:
        return path
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_config(path: Path | None) -> EnvironmentConfig:
    """The config file at ``path`` (YAML or JSON), or the built-in default when ``path`` is None."""
    if path is None:
        return EnvironmentConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"environment config {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"environment config {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"environment config {path} must be a mapping with 'branches' / 'required_secrets'")
    unknown = set(data) - {"branches", "default", "required_secrets"}
    if unknown:
        raise ConfigError(f"environment config {path}: unknown keys {sorted(unknown)}")
    branches = data.get("branches", DEFAULT_BRANCHES)
    secrets = data.get("required_secrets", {})
    if not isinstance(branches, dict) or not all(isinstance(v, str) for v in branches.values()):
        raise ConfigError(f"environment config {path}: 'branches' must map branch patterns to environment names")
    if not isinstance(secrets, dict) or not all(isinstance(v, list) for v in secrets.values()):
        raise ConfigError(f"environment config {path}: 'required_secrets' must map environments to lists of names")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"environment config {path}: 'default' must be an environment name or null")
    return EnvironmentConfig({str(k): v for k, v in branches.items()}, default,
                             {str(k): [str(n) for n in v] for k, v in secrets.items()}, source=f"environment config {path}")


def branch_of(ref: str) -> str:
    """``refs/heads/main`` -> ``main``; a bare branch name is returned as is; tags are refused."""
    ref = ref.strip()
    if ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    if ref.startswith("refs/"):
        raise ConfigError(f"{ref!r} is not a branch ref; only branches (refs/heads/...) deploy")
    if not ref:
        raise ConfigError("empty git ref")
    return ref


def resolve(ref: str, config: EnvironmentConfig | None = None) -> str:
    """The environment a push to ``ref`` deploys to (first matching branch pattern wins)."""
    config = config or EnvironmentConfig()
    branch = branch_of(ref)
    if branch in config.branches:
        return config.branches[branch]
    for pattern, env in config.branches.items():
        if fnmatch.fnmatchcase(branch, pattern):
            return env
    if config.default:
        return config.default
    known = ", ".join(f"{b} -> {e}" for b, e in config.branches.items())
    raise ConfigError(f"branch {branch!r} maps to no environment in the {config.source} (known: {known}); "
                      f"add it under 'branches' (or set a 'default') in {DEFAULT_CONFIG} or a --config file")


def check_secrets(env_name: str, config: EnvironmentConfig | None = None,
                  environ: Mapping[str, str] | None = None) -> SecretCheck:
    """Which of the environment's required secrets are set (non-empty) in ``environ``. Values are never kept."""
    config = config or EnvironmentConfig()
    environ = os.environ if environ is None else environ
    if env_name not in config.environments:
        raise ConfigError(f"unknown environment {env_name!r} in the {config.source}; "
                          f"known: {', '.join(config.environments)}")
    if env_name not in config.required_secrets:
        raise ConfigError(f"no required secrets are named for environment {env_name!r} in the {config.source}: "
                          f"list them under 'required_secrets' in {DEFAULT_CONFIG} (or a --config file), "
                          "or pass --require NAME for each")
    names = config.required_secrets[env_name]
    present = [n for n in names if environ.get(n, "").strip()]
    missing = [n for n in names if not environ.get(n, "").strip()]
    return SecretCheck(env_name, present, missing)


def check_report(result: SecretCheck) -> str:
    """Human-readable lines: names and set/missing only."""
    total = len(result.present) + len(result.missing)
    lines = [f"environment {result.environment}: {len(result.present)}/{total} required secrets set"]
    lines += [f"  set      {name}" for name in result.present]
    lines += [f"  MISSING  {name}" for name in result.missing]
    return "\n".join(lines)


def check_json(result: SecretCheck) -> str:
    return json.dumps({"environment": result.environment, "ok": result.ok,
                       "present": result.present, "missing": result.missing})
