"""Exceptions that carry an exit code and a message that says what to do.

Exit codes are part of the product (README, ``hardening --help``):

====  ==========================================================
0     success (SLOs passed, or ``--warn-only``)
1     SLO failed / verification failed / deploy rolled back
2     usage or configuration error (bad SLO file, missing script, bad flag)
3     infrastructure error (target, Redis or k6 unreachable or crashed)
130   interrupted (Ctrl-C); the partial run record is kept
====  ==========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class HardeningError(Exception):
    """Base class: ``str(err)`` is the message shown to the user; ``exit_code`` the CLI status."""

    exit_code = EXIT_USAGE


class ConfigError(HardeningError):
    """Bad input from the user: a file, a flag, an expression. Exit 2."""

    exit_code = EXIT_USAGE


class InfraError(HardeningError):
    """Something the tool depends on is missing, unreachable or crashed. Exit 3."""

    exit_code = EXIT_INFRA


class CheckFailed(HardeningError):
    """A gate said no: SLO failed, artifact verification failed, deploy rolled back. Exit 1."""

    exit_code = EXIT_FAIL
