"""Environments: which git ref deploys where, and which secrets each environment needs.

The default map is the seed's: ``main`` -> production, ``pinithi`` -> staging. A YAML/JSON config file
(``--config``) can replace it::

    branches:            # first match wins; fnmatch patterns allowed
      main: production
      pinithi: staging
      "release/*": staging
    default: null        # environment for an unmatched branch (null = refuse)
    required_secrets:
      production: [RAILWAY_TOKEN, REDIS_URL, JWT_SECRET]
      staging: [RAILWAY_TOKEN, REDIS_URL]

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

DEFAULT_BRANCHES: dict[str, str] = {"main": "production", "pinithi": "staging"}
# The seed's environment-scoped secrets (same names in both environments, different values).
SEED_SECRETS = [
    "RAILWAY_TOKEN", "MONGODB_URI", "REDIS_URL", "JWT_SECRET",
    "SUPABASE_URL", "SUPABASE_KEY", "SUPABASE_ANON_KEY", "VERCEL_TOKEN",
]


@dataclass(frozen=True)
class EnvironmentConfig:
    branches: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BRANCHES))
    default: str | None = None
    required_secrets: dict[str, list[str]] = field(
        default_factory=lambda: {"production": list(SEED_SECRETS), "staging": list(SEED_SECRETS)})

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


def load_config(path: Path | None) -> EnvironmentConfig:
    """The seed's defaults, or the config file at ``path`` (YAML or JSON)."""
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
    secrets = data.get("required_secrets", EnvironmentConfig().required_secrets)
    if not isinstance(branches, dict) or not all(isinstance(v, str) for v in branches.values()):
        raise ConfigError(f"environment config {path}: 'branches' must map branch patterns to environment names")
    if not isinstance(secrets, dict) or not all(isinstance(v, list) for v in secrets.values()):
        raise ConfigError(f"environment config {path}: 'required_secrets' must map environments to lists of names")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"environment config {path}: 'default' must be an environment name or null")
    return EnvironmentConfig({str(k): v for k, v in branches.items()}, default,
                             {str(k): [str(n) for n in v] for k, v in secrets.items()})


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
    raise ConfigError(f"branch {branch!r} maps to no environment (known: {known}); "
                      "add it to the config's 'branches' or set a 'default'")


def check_secrets(env_name: str, config: EnvironmentConfig | None = None,
                  environ: Mapping[str, str] | None = None) -> SecretCheck:
    """Which of the environment's required secrets are set (non-empty) in ``environ``. Values are never kept."""
    config = config or EnvironmentConfig()
    environ = os.environ if environ is None else environ
    if env_name not in config.required_secrets:
        raise ConfigError(f"unknown environment {env_name!r}; known: {', '.join(config.environments)}")
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
