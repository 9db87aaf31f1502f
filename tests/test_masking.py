"""The one masking function: URL passwords, secret query parameters, secret environment values."""

from __future__ import annotations

from hardening.masking import mask, mask_obj, mask_url

ENV = {
    "JWT_SECRET": "jwt-0123456789",
    "RAILWAY_TOKEN": "rw_tok_abcdef",
    "REDIS_URL": "redis://default:r3dis-pass@cache.internal:6379/0",
    "BASE_URL": "http://127.0.0.1:8080",
    "SHORT_TOKEN": "abc",
}


def test_mask_url_keeps_user_and_host():
    assert mask_url("rediss://user:p%40ss@host:6380/1") == "rediss://user:***@host:6380/1"
    assert mask_url("redis://:onlypw@127.0.0.1:6379") == "redis://:***@127.0.0.1:6379"
    assert mask_url("http://127.0.0.1:8080/x") == "http://127.0.0.1:8080/x"


def test_mask_hides_secret_values_and_url_passwords_but_not_plain_urls():
    text = ("token rw_tok_abcdef and jwt-0123456789 to redis://default:r3dis-pass@cache.internal:6379/0 "
            "via http://127.0.0.1:8080 password r3dis-pass; https://x/cb?token=t0p&x=1")
    out = mask(text, env=ENV)
    for secret in ("rw_tok_abcdef", "jwt-0123456789", "r3dis-pass", "t0p"):
        assert secret not in out
    assert "http://127.0.0.1:8080" in out, "BASE_URL is not a secret"
    assert "redis://default:***@cache.internal:6379/0" in out
    assert "x=1" in out
    assert "abc" in mask("abc", env=ENV), "values under 6 characters are not masked by value"


def test_mask_obj_walks_keys_and_values():
    data = {"cmd": ["deploy", "--token", "rw_tok_abcdef"], "rw_tok_abcdef": 1, "n": 3}
    out = mask_obj(data, env=ENV)
    assert out == {"cmd": ["deploy", "--token", "***"], "***": 1, "n": 3}
