"""Nothing the application sent as a value (card numbers), no password, no client name reaches a file."""

from __future__ import annotations

import json

import pytest
import redis
from redis_support import SERVERS

from hardening.redisobs import Collector, compare, observe
from hardening.redisobs.redact import redact_args

CARD = "4111111111111111"
PASSWORD = "s3cr3t-Pa55-xyz"
APP_NAME = "payments-worker-7"


def _all_output(path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(path.rglob("*")) if p.is_file())


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("include_args", [False, True])
def test_planted_values_never_written(server, include_args, tmp_path, shared_server):
    s = shared_server(server, password=PASSWORD)         # started with --requirepass PASSWORD
    url = f"redis://:{PASSWORD}@127.0.0.1:{s.port}/0"
    app = redis.Redis.from_url(url, protocol=2, driver_info=None, client_name=APP_NAME)
    app.config_set("slowlog-log-slower-than", 0)          # the next test's reset sets it back
    with observe(url, tmp_path, interval=0.2, include_args=include_args) as obs:
        app.lpush("queue:payments", json.dumps({"card": CARD, "amount": 12}))
        app.set("card:last", CARD)
        app.execute_command("CONFIG", "SET", "requirepass", PASSWORD)
    summary = obs.summary
    text = _all_output(tmp_path)
    assert summary["slowlog_new"] >= 3
    for secret in (CARD, PASSWORD, APP_NAME):
        assert secret not in text, f"{secret} leaked"
    assert ":***@127.0.0.1" in text
    entries = json.loads((tmp_path / "comparison.json").read_text())["aggregate"]["slowlog"]["top"]
    lpush = next(e for e in entries if e["command"] == "LPUSH")
    assert lpush["arg_count"] == 3 and lpush["client_name"].startswith("h:")
    config_set = next(e for e in entries if e["command"] == "CONFIG SET")
    if include_args:
        assert lpush["args"][1] == "queue:payments"                   # key kept
        assert lpush["args"][2] == f"<{len(json.dumps({'card': CARD, 'amount': 12}))} bytes>"
        assert config_set["args"][2:] == ["<redacted>", "<redacted>"]
        assert "queue:payments" in text
    else:
        assert "args" not in lpush and "queue:payments" not in text


def test_sensitive_commands_always_redacted():
    assert redact_args([b"AUTH", b"user", b"pw"], "auth", None) == ["AUTH", "<redacted>", "<redacted>"]
    assert redact_args([b"HELLO", b"3", b"AUTH", b"u", b"p"], "hello", None)[1:] == ["<redacted>"] * 4
    assert redact_args([b"ACL", b"SETUSER", b"bob", b">pw"], "acl|setuser", None) == [
        "ACL", "SETUSER", "<redacted>", "<redacted>"]
    assert redact_args([b"MIGRATE", b"h", b"6379", b"k", b"0", b"5000", b"AUTH", b"pw"], "migrate",
                       (3, 3, 1))[1:] == ["<redacted>"] * 7
    # keys from COMMAND INFO's first/last/step, values by length
    assert redact_args([b"MSET", b"a", b"xx", b"b", b"yyy"], "mset", (1, -1, 2)) == [
        "MSET", "a", "<2 bytes>", "b", "<3 bytes>"]
    # the server truncates long values: "... (N more bytes)" gives the real length
    assert redact_args([b"SET", b"k", b"x" * 128 + b"... (72 more bytes)"], "set", (1, 1, 1))[2] == "<200 bytes>"


def test_client_addresses_hashed_and_url_masked(shared_server):
    s = shared_server("valkey-9")
    app = redis.Redis.from_url(s.url, protocol=2, driver_info=None, client_name=APP_NAME)
    app.ping()
    collector = Collector(s.url)
    snap = collector.snapshot()
    collector.close()
    clients = snap["nodes"][0]["clients"]
    assert clients["total"] == 1 and clients["named"] == 1
    assert clients["top_names"][0][0].startswith("h:")
    assert APP_NAME not in json.dumps(snap)
    assert compare(snap, snap)["aggregate"]["app_commands"] == 0
