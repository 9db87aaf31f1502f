"""Time of ``hardening.masking.mask`` on 1 MB of text, against two alternatives measured in the same run.

Shapes (each 1 MB): a URL whose path is one long run of URL-like characters (the input that made the
earlier masking quadratic), a run of digits right before ``://user:password@`` (the slow path of the
scheme check), many URLs with passwords and secret query parameters, and plain prose.

Alternatives:
- the earlier algorithm (one regex that starts at every scheme-like character), timed on 8, 16 and
  32 KB of the long-run shape so its growth shows (×4 per doubling = quadratic), next to ``mask`` on the
  same sizes;
- a plain ``re.sub`` baseline: one pass of a simple regex (``://user:password@`` only, no scheme check, no
  query parameters, no secret values) over the same 1 MB: the floor a regex pass costs.

    .venv/bin/python benchmarks/bench_masking.py [--repeat 5]

Not a test: it prints figures and ratios (best of ``--repeat`` runs each).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

from hardening.masking import mask

MB = 1 << 20
ENV = {"JWT_SECRET": "jwt-0123456789", "DB_PASSWORD_STAGING": "s3cret-staging-pw", "BASE_URL": "http://x"}
# The earlier URL-password regex, kept here only to measure it.
_OLD_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)@")
_BASELINE = re.compile(r"://([^:/@\s]*):[^@\s/]+@")


def old_mask_userinfo(text: str) -> str:
    return _OLD_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def baseline(text: str) -> str:
    return _BASELINE.sub(r"://\1:***@", text)


def long_run(size: int) -> str:
    """A URL whose path is one long run of URL-like characters (e.g. an inline base64 blob)."""
    head = "https://example.com/"
    return head + "a" * (size - len(head))


def digit_run(size: int) -> str:
    """Digits right up to ``://user:password@``: the slow path of the scheme check (no letter before ://)."""
    tail = "://user:pw-123456@host/x"
    return "1" * (size - len(tail)) + tail


def shapes(size: int) -> dict[str, str]:
    url_line = "GET redis://default:pw-12345678@cache:6379/0 then https://example.com/cb?token=t0k3n&x=1\n"
    prose = ("The deploy verified the artifact, recorded the rollback target and checked the health "
             "endpoint three times before it marked the release green.\n")
    return {
        "long URL-like run": long_run(size),
        "digit run before ://user:pw@": digit_run(size),
        "many URLs + query secrets": (url_line * (size // len(url_line) + 1))[:size],
        "plain prose": (prose * (size // len(prose) + 1))[:size],
    }


def best_of(fn: Callable[[str], str], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is printed (default 5)")
    args = parser.parse_args()

    def masked(text: str) -> str:
        return mask(text, env=ENV)

    print("1 MB inputs: mask() vs a plain re.sub pass (simple regex, no scheme check, no secret values)")
    print(f"{'shape':<30} {'mask':>10} {'re.sub':>10} {'ratio':>7}")
    for name, text in shapes(MB).items():
        ours, base = best_of(masked, text, args.repeat), best_of(baseline, text, args.repeat)
        print(f"{name:<30} {ours * 1000:>8.1f}ms {base * 1000:>8.1f}ms {ours / base:>6.2f}×")

    print("\nlong URL-like run: the earlier algorithm vs mask() (×4 per doubling = quadratic)")
    print(f"{'size':>8} {'earlier':>10} {'mask':>10} {'ratio':>8}")
    previous = None
    for kb in (8, 16, 32):
        text = long_run(kb * 1024)
        old = best_of(old_mask_userinfo, text, max(1, args.repeat // 2))
        ours = best_of(masked, text, args.repeat)
        growth = f"  earlier grew ×{old / previous:.1f}" if previous else ""
        print(f"{kb:>6}KB {old * 1000:>8.1f}ms {ours * 1000:>8.2f}ms {old / ours:>7.0f}×{growth}")
        previous = old
    one_mb_old_estimate = previous * (MB / (32 * 1024)) ** 2
    print(f"(extrapolated: the earlier algorithm would take ~{one_mb_old_estimate:.0f} s on the 1 MB run)")


if __name__ == "__main__":
    main()
