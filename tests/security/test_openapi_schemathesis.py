"""Schemathesis against one live node: no 5xx, and every response matches /openapi.json.

Bounded: fuzzing phase only, a fixed seed, a few examples per operation and a time budget, against
a single node this test starts on free ports (a token is configured, and sent).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
TOKEN = "fuzz-token"
RUN_TIME_S = 10
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (test extra)"),
]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_leader(port: int, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the node exited: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
                if json.load(resp)["role"] == "leader":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("the node never became leader")


def test_schemathesis_finds_no_server_error_and_no_undocumented_response(tmp_path):
    http_port, raft_port = free_ports(2)
    config = tmp_path / "node.toml"
    config.write_text(
        f'[node]\ndata_dir = "./data"\n[network]\nclient_port = {http_port}\n'
        f"raft_port = {raft_port}\n[storage]\nmax_value_bytes = 65536\n"
        f'[security]\napi_token = "{TOKEN}"\n'
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    node = subprocess.Popen(
        [sys.executable, "-m", "scribe.node", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_leader(http_port, node)
        result = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"http://127.0.0.1:{http_port}/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--checks",
                ",".join(CHECKS),
                "--phases",
                "fuzzing",
                "--mode",
                "positive",
                "--max-examples",
                "10",
                "--seed",
                "20240601",
                "--max-time",
                str(RUN_TIME_S),
                "--request-timeout",
                "10",
                "--no-shrink",
                "--generation-database",
                "none",
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIME_S + 60,
        )
        tail = (result.stdout + result.stderr)[-4000:]
        assert result.returncode == 0, tail
        assert "Tested: 21" in result.stdout or "passed" in result.stdout, tail
    finally:
        node.terminate()
        try:
            node.wait(timeout=20)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
