"""Shared by tools/e2e_test.py, stress_test.py and cluster_e2e_test.py: PASS/FAIL checks and a
small HTTP client for Scribe nodes (retries 503/504 the way a client of a cluster must)."""

from __future__ import annotations

import http.client
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

HTTP_TIMEOUT_S = 15
RETRY_FOR_S = 15.0
RETRYABLE = (503, 504)
TUTORIAL_NODES = ["http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"]


class Checks:
    """Runs named checks, prints PASS/FAIL for each, and remembers whether any failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # a check failing for any reason is a FAIL line, not a crash
            self.failed.append(name)
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", flush=True)
            return None
        self.passed += 1
        print(f"PASS  {name} ({(time.perf_counter() - started) * 1000:.0f} ms)", flush=True)
        return result

    def exit_code(self) -> int:
        total = self.passed + len(self.failed)
        print(f"\n{self.passed}/{total} checks passed")
        if self.failed:
            print("failed: " + ", ".join(self.failed))
        return 1 if self.failed else 0


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class Reply:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Node:
    """One node's HTTP API over a keep-alive connection (not thread-safe: one per thread)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Reply:
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=HTTP_TIMEOUT_S
                )
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                resp = self._conn.getresponse()
                data = resp.read()
                return Reply(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def with_retry(self, method: str, path: str, body: bytes | None = None, headers=None) -> Reply:
        """Retry 503 (no leader) and 504 (outcome unknown) and refused connections for a while."""
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                reply = self.request(method, path, body, headers)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
                continue
            if reply.status not in RETRYABLE or time.monotonic() > deadline:
                return reply
            time.sleep(0.1)

    def put_json(self, key: str, value: str) -> dict:
        body = json.dumps({"key": key, "value": value}).encode()
        reply = self.with_retry("PUT", "/put", body, {"Content-Type": "application/json"})
        expect(reply.status == 200, f"PUT /put {key!r} -> {reply.status} {reply.text()}")
        return reply.json()

    def get_text(self, key: str, stale: bool = False) -> str | None:
        path = "/get/" + quote(key) + ("?consistency=stale" if stale else "")
        reply = self.with_retry("GET", path)
        if reply.status == 404:
            return None
        expect(reply.status == 200, f"GET {path} -> {reply.status} {reply.text()}")
        return reply.text()

    def get_json(self, path: str) -> Any:
        reply = self.with_retry("GET", path)
        expect(reply.status == 200, f"GET {path} -> {reply.status} {reply.text()}")
        return reply.json()


def quote(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, AssertionError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def node_urls(argv_urls: list[str]) -> list[str]:
    urls = argv_urls or TUTORIAL_NODES
    for url in urls:
        if not url.startswith("http://"):
            print(f"not an http:// URL: {url}", file=sys.stderr)
            raise SystemExit(2)
    return [u.rstrip("/") for u in urls]
