"""Real-process cluster tests: a cluster started through the launcher, HTTP helpers with retries.

Every cluster lives in its own tmp dir on ports nobody else holds; teardown stops it with
`launcher down` and then SIGKILLs any pid this harness recorded that is still alive (its own only).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TICK_MS = 50  # fast elections keep the suite short; the defaults are exercised by the tutorial
LAUNCH_TIMEOUT_S = 60
HTTP_TIMEOUT_S = 10
RETRYABLE = (503, 504)


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), out.get("PYTHONPATH", "")) if p)
    return out


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(count: int) -> int:
    """A base port such that base .. base+count-1 are free now (random start: parallel workers)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        if all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found")


def run_launcher(*args: str, timeout_s: float = LAUNCH_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "launcher", *args],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = HTTP_TIMEOUT_S,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


def quote(key: str) -> str:
    return urllib.parse.quote(key, safe="")


class Cluster:
    """A cluster in `path`, started by `python -m launcher up --detach`."""

    def __init__(self, path: Path, nodes: int = 3, transport: str = "tcp") -> None:
        self.path = path
        self.nodes = nodes
        self.transport = transport
        base = free_port_block(2 * nodes)
        self.http_port = base
        self.raft_port = base + nodes
        self.pids: set[int] = set()

    def port(self, node_id: int) -> int:
        return self.http_port + node_id - 1

    @property
    def ids(self) -> list[int]:
        return list(range(1, self.nodes + 1))

    def launcher(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = run_launcher(*args, "--dir", str(self.path))
        self._record_pids()
        if check and result.returncode != 0:
            raise AssertionError(
                f"launcher {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{self.logs()}"
            )
        return result

    def up(self) -> subprocess.CompletedProcess:
        return self.launcher(
            "up",
            "-n",
            str(self.nodes),
            "--transport",
            self.transport,
            "--http-port",
            str(self.http_port),
            "--raft-port",
            str(self.raft_port),
            "--tick-ms",
            str(TICK_MS),
            "--detach",
        )

    def _record_pids(self) -> None:
        pid_dir = self.path / "pids"
        if pid_dir.is_dir():
            for pid_file in pid_dir.glob("node*.pid"):
                with contextlib.suppress(ValueError, OSError):
                    self.pids.add(int(pid_file.read_text().strip()))

    def pid(self, node_id: int) -> int | None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int((self.path / "pids" / f"node{node_id}.pid").read_text().strip())
        return None

    def logs(self) -> str:
        out = []
        for log in sorted((self.path / "logs").glob("*.log")) if self.path.exists() else []:
            lines = log.read_text(errors="replace").splitlines()[-20:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def teardown(self) -> None:
        with contextlib.suppress(Exception):
            run_launcher("down", "--dir", str(self.path), "--grace", "3", timeout_s=30)
        for pid in self.pids:  # anything the launcher could not stop: only our own pids
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    # ---- HTTP ------------------------------------------------------------------------------

    def health(self, node_id: int) -> dict | None:
        try:
            resp = request(self.port(node_id), "GET", "/health", timeout_s=2)
        except OSError:
            return None
        return resp.json() if resp.status == 200 else None

    def leader(self, among: list[int] | None = None, timeout_s: float = 10) -> int:
        """The leader every node in `among` agrees on (waits for it)."""
        among = among or self.ids
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            seen = set()
            for node_id in among:
                h = self.health(node_id)
                seen.add(None if h is None else h.get("leader_id"))
            if len(seen) == 1 and None not in seen:
                return seen.pop()
            time.sleep(0.05)
        raise AssertionError(f"no agreed leader among {among} in {timeout_s} s\n{self.logs()}")

    def put(self, node_id: int, key: str, value: str, timeout_s: float = 15) -> dict:
        """PUT /put, retrying 503/504 and refused connections until acknowledged."""
        body = json.dumps({"key": key, "value": value}).encode()
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                resp = request(
                    self.port(node_id),
                    "PUT",
                    "/put",
                    body,
                    {"Content-Type": "application/json"},
                )
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            if resp.status == 200:
                return resp.json()
            if resp.status not in RETRYABLE:
                raise AssertionError(f"PUT {key} -> {resp.status} {resp.body!r}")
            last = resp.body
            time.sleep(0.05)
        raise AssertionError(f"PUT {key} to node {node_id} never acknowledged: {last!r}")

    def get(self, node_id: int, key: str, stale: bool = False, timeout_s: float = 15) -> str | None:
        """GET /get/<key> (linearizable unless stale), retrying 503s; None on 404."""
        path = "/get/" + quote(key) + ("?consistency=stale" if stale else "")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                resp = request(self.port(node_id), "GET", path)
            except OSError:
                resp = None
            if resp is not None and resp.status == 200:
                return resp.body.decode()
            if resp is not None and resp.status == 404:
                return None
            if time.monotonic() > deadline:
                status = None if resp is None else (resp.status, resp.body)
                raise AssertionError(f"GET {key} from node {node_id} failed: {status}")
            time.sleep(0.05)

    def wait_value(self, node_id: int, key: str, value: str, timeout_s: float = 10) -> None:
        """Wait until a stale (local) read on node_id shows value: replication reached it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.get(node_id, key, stale=True) == value:
                return
            time.sleep(0.05)
        raise AssertionError(f"node {node_id} never showed {key}={value}\n{self.logs()}")


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")
