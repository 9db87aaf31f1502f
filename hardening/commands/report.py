"""`hardening report` subcommands (placeholder until its issue lands)."""

from __future__ import annotations


def register(subparsers) -> None:
    return None
