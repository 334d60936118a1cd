"""A launched cluster with a token and CurveZMQ keys: writes need the token, secrets stay private,
a node with a corrupt log stops (the cluster keeps working), and a node whose data directory was
lost starts again only with --rejoin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the cluster harness

from cluster.harness import (  # noqa: E402
    ROOT,
    TICK_MS,
    free_port_block,
    pid_alive,
    quote,
    request,
    run_launcher,
)

pytestmark = pytest.mark.timeout(120)
TOKEN = "door-token-7f3a"
NODES = 3
_FRAME_HEAD = struct.Struct(">II")  # u32be(len(payload)), u32be(crc32c(payload))
_SEGMENT_HEADER_BYTES = 16


class TokenCluster:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.http_port = free_port_block(2 * NODES)
        self.raft_port = self.http_port + NODES
        self.pids: set[int] = set()

    def launcher(self, *args: str) -> object:
        result = run_launcher(*args, "--dir", str(self.path))
        for pid_file in (self.path / "pids").glob("node*.pid"):
            text = pid_file.read_text().strip()
            if text.isdigit():
                self.pids.add(int(text))
        return result

    def port(self, node_id: int) -> int:
        return self.http_port + node_id - 1

    def put(self, node_id: int, key: str, value: bytes, token: str | None = TOKEN, wait_s=15):
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        deadline = time.monotonic() + wait_s
        while True:
            try:
                resp = request(self.port(node_id), "PUT", "/kv/" + quote(key), value, headers)
            except OSError:
                resp = None
            if resp is not None and resp.status not in (503, 504):
                return resp
            if time.monotonic() > deadline:
                raise AssertionError(f"PUT {key} to node {node_id}: no answer but 503/504")
            time.sleep(0.05)

    def stale_value(self, node_id: int, key: str) -> bytes | None:
        try:
            resp = request(self.port(node_id), "GET", f"/kv/{quote(key)}?consistency=stale")
        except OSError:
            return None
        return resp.body if resp.status == 200 else None

    def wait_value(self, node_id: int, key: str, value: bytes, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.stale_value(node_id, key) == value:
                return
            time.sleep(0.05)
        raise AssertionError(f"node {node_id} never showed {key}")

    def log(self, node_id: int) -> str:
        return (self.path / "logs" / f"node{node_id}.log").read_text(errors="replace")

    def teardown(self) -> None:
        run_launcher("down", "--dir", str(self.path), "--grace", "3", timeout_s=30)
        for pid in self.pids:  # only pids this test's launcher recorded
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, monkeypatch_module):
    # the token reaches the launcher through the environment, as an operator would pass it
    monkeypatch_module.setenv("SCRIBE_API_TOKEN", TOKEN)
    c = TokenCluster(tmp_path_factory.mktemp("doors") / "cluster")
    try:
        result = c.launcher(
            "up",
            "-n",
            str(NODES),
            "--http-port",
            str(c.http_port),
            "--raft-port",
            str(c.raft_port),
            "--tick-ms",
            str(TICK_MS),
            "--detach",
        )
        assert result.returncode == 0, result.stderr
        yield c
    finally:
        c.teardown()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_writes_need_the_token_and_secrets_stay_private(cluster):
    assert cluster.put(1, "open", b"x", token=None).status == 401
    assert cluster.put(1, "open", b"x", token="wrong").status == 401
    resp = cluster.put(2, "guarded", b"v1")  # a follower forwards it: the token still counts
    assert resp.status == 200, resp.body
    cluster.wait_value(3, "guarded", b"v1")
    for node_id in range(1, NODES + 1):
        config = cluster.path / f"config-node{node_id}.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        secret = cluster.path / "keys" / "secret" / f"node{node_id}.key_secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert "(curve)" in cluster.log(node_id)  # the peer links are CurveZMQ
        assert TOKEN not in cluster.log(node_id)
    status = run_launcher("status", "--dir", str(cluster.path))
    assert TOKEN not in status.stdout + status.stderr


def test_bench_cluster_sends_the_token(cluster):
    urls = ",".join(f"http://127.0.0.1:{cluster.port(i)}" for i in range(1, NODES + 1))
    env = {k: v for k, v in os.environ.items() if k != "SCRIBE_API_TOKEN"}
    bench = [sys.executable, str(ROOT / "tools" / "bench_cluster.py"), "--nodes", urls]
    bench += ["--duration", "1", "--clients", "2", "--workload", "put", "--quiet", "--json"]
    without = subprocess.run(bench, capture_output=True, text=True, timeout=60, env=env)
    assert without.returncode == 1  # every write refused with 401: no ops
    with_token = subprocess.run(
        bench + ["--api-token", TOKEN], capture_output=True, text=True, timeout=60, env=env
    )
    assert with_token.returncode == 0, with_token.stdout + with_token.stderr
    assert json.loads(with_token.stdout.splitlines()[-1])["ops"] > 0


def _corrupt_middle_entry(data_dir: Path) -> tuple[Path, int]:
    """Flip a payload byte of an entry in the middle of the first .rlog: (file, frame offset)."""
    segment = sorted(data_dir.glob("*.rlog"))[0]
    raw = bytearray(segment.read_bytes())
    offsets = []
    at = _SEGMENT_HEADER_BYTES
    while at + _FRAME_HEAD.size <= len(raw):
        length, _ = _FRAME_HEAD.unpack_from(raw, at)
        if length == 0 or at + _FRAME_HEAD.size + length > len(raw):
            break
        offsets.append(at)
        at += _FRAME_HEAD.size + length
    assert len(offsets) >= 5, f"only {len(offsets)} entries in {segment}"
    victim = offsets[len(offsets) // 2]
    raw[victim + _FRAME_HEAD.size + 12] ^= 0xFF  # inside the entry's index field
    segment.write_bytes(bytes(raw))
    return segment, victim


def test_corrupt_log_stops_the_node_then_rejoin_needs_the_flag(cluster):
    for i in range(12):
        assert cluster.put(1, f"k{i}", f"v{i}".encode()).status == 200
    cluster.wait_value(3, "k11", b"v11")
    assert cluster.launcher("stop", "3").returncode == 0
    data_dir = cluster.path / "data" / "node3"
    segment, _ = _corrupt_middle_entry(data_dir)
    size_before = segment.stat().st_size

    started = cluster.launcher("start", "3", "--timeout", "20")
    assert started.returncode != 0
    log = cluster.log(3)
    assert "corrupt" in log and segment.name in log and "offset" in log, log[-2000:]
    assert segment.stat().st_size == size_before  # never truncated
    assert cluster.put(1, "after-corruption", b"ok").status == 200  # two of three still commit

    # The operator removes the damaged data: a plain start refuses, --rejoin catches up
    shutil.rmtree(data_dir)
    refused = cluster.launcher("start", "3", "--timeout", "20")
    assert refused.returncode != 0
    assert "--rejoin" in cluster.log(3)
    assert not any(data_dir.iterdir()) if data_dir.exists() else True
    rejoined = cluster.launcher("start", "3", "--rejoin", "--timeout", "30")
    assert rejoined.returncode == 0, rejoined.stdout + rejoined.stderr
    # It copies the whole log from the leader, then votes again (the pending marker is gone)
    cluster.wait_value(3, "after-corruption", b"ok")
    for i in range(12):
        assert cluster.stale_value(3, f"k{i}") == f"v{i}".encode()
    assert cluster.put(2, "after-rejoin", b"yes").status == 200
    cluster.wait_value(3, "after-rejoin", b"yes")
    deadline = time.monotonic() + 10
    while (data_dir / "rejoin.pending").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (data_dir / "rejoin.pending").exists()
    assert "caught up after rejoining" in cluster.log(3)
    health = json.loads(request(cluster.port(3), "GET", "/health").body)
    assert health["status"] == "ok" and health["leader_id"] in (1, 2)
    assert (data_dir / "node.id").read_text().split() == ["scribe-node", "3"]


def test_member_marker_survives_and_configs_load_by_hand(cluster):
    """The configs the launcher wrote load by hand, keys included."""
    sys.path.insert(0, str(ROOT))
    from scribe.config import load_config

    config = load_config(cluster.path / "config-node2.toml", create_data_dir=False)
    assert config.security.api_token == TOKEN and TOKEN not in repr(config)
    assert config.security.curve_secret_key_file.is_file()
    assert (cluster.path / "data" / "node2.member").is_file()
    doc = json.loads(request(cluster.port(2), "GET", "/health").body)
    assert doc["status"] == "ok"
