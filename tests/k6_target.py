"""A tiny loopback HTTP target for the k6 script corpus in ``tests/k6_scripts``.

It answers the paths that the upstream k6 examples call on httpbin.org, test.k6.io and
quickpizza.grafana.com with plausible bodies, so the scripts' checks pass::

    with K6Target() as base_url:      # e.g. "http://127.0.0.1:41234"
        ... k6 run --env BASE_URL=<base_url> script.js ...

HTTP/1.1 with keep-alive (k6 VUs reuse their connection), one thread per connection, no logging.
It cannot make the ``http2 is used`` check of ``thresholds_readme_example.js`` pass: k6 speaks
HTTP/2 only over TLS (ALPN), never over plain ``http://``.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hardening.net import free_port

_HOME = b"""<!DOCTYPE html>
<html><head><title>k6 loopback target</title></head>
<body><h1>Looking to break out of your pizza routine?</h1>
<p class="description">A loopback stand-in for test.k6.io, httpbin.org and QuickPizza.</p>
</body></html>
"""
_TEST_K6_IO = b"""<!DOCTYPE html>
<html><head><title>Demo website for load testing</title>
<link rel="stylesheet" href="/test.k6.io/static/css/site.css"></head>
<body><h1>Welcome to the k6.io demo site!</h1>
<p class="description">This is a replacement of the service that used to be at test.k6.io,
served here from 127.0.0.1.</p>
<script src="/test.k6.io/static/js/prisms.js"></script></body></html>
"""
_CONTACTS = b"<!DOCTYPE html><html><head><title>Contact</title></head><body><h1>Contact us</h1></body></html>\n"
_NEWS = b"<!DOCTYPE html><html><head><title>News</title></head><body><h1>In the news</h1></body></html>\n"
_STATIC = {
    "/test.k6.io/static/css/site.css": ("text/css", b"body { font-family: sans-serif; }\n"),
    "/test.k6.io/static/js/prisms.js": ("application/javascript", b"/* prism */\n"),
    "/test.k6.io/static/favicon.ico": ("image/x-icon", bytes(64)),
}
_PIZZA = {
    "id": 1042,
    "name": "Loopback Margherita",
    "dough": {"id": 1, "name": "Thin", "caloriesPerSlice": 150},
    "ingredients": [
        {"id": 1, "name": "Tomato sauce", "caloriesPerSlice": 20, "vegetarian": True},
        {"id": 2, "name": "Mozzarella", "caloriesPerSlice": 90, "vegetarian": True},
        {"id": 3, "name": "Basil", "caloriesPerSlice": 1, "vegetarian": True},
    ],
    "tool": "Pizza cutter",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server_version = "k6-target/1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            self._send(200, _HOME, "text/html; charset=utf-8")
        elif url.path in ("/test.k6.io", "/test.k6.io/"):
            self._send(200, _TEST_K6_IO, "text/html; charset=utf-8")
        elif url.path in _STATIC:
            self._send(200, _STATIC[url.path][1], _STATIC[url.path][0])
        elif url.path == "/contacts.php":
            self._send(200, _CONTACTS, "text/html; charset=utf-8")
        elif url.path == "/news.php":
            self._send(200, _NEWS, "text/html; charset=utf-8")
        elif url.path == "/api/json":  # QuickPizza echoes the query string as JSON
            self._json(200, {k: v[-1] for k, v in parse_qs(url.query).items()})
        else:
            self._json(404, {"error": "not found", "path": url.path})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/api/pizza":
            try:
                json.loads(body or b"{}")
            except ValueError:
                self._json(400, {"error": "invalid JSON"})
                return
            self._json(200, {"pizza": _PIZZA, "calories": 111, "vegetarian": True})
        elif url.path == "/post":  # httpbin echo
            self._json(200, {"data": body.decode("utf-8", "replace"), "headers": dict(self.headers)})
        else:
            self._json(404, {"error": "not found", "path": url.path})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen() backlog: 100+ VUs connect at once in scenarios_thresholds.js

    def handle_error(self, request: object, client_address: object) -> None:
        """k6 drops its connections when a run aborts: not worth a traceback on stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class K6Target:
    """Context manager: serve on ``127.0.0.1:<free port>`` in a daemon thread, stop on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="k6-target", daemon=True)
        self._thread.start()
        return self.base_url

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


if __name__ == "__main__":  # manual use: python tests/k6_target.py
    import time

    with K6Target() as url:
        print(url, flush=True)
        while True:
            time.sleep(3600)
