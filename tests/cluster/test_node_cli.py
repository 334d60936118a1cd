"""`python -m scribe.node` and `python -m launcher` refuse bad input with one clear message."""

import signal
import socket
import subprocess
import time

import pytest

from .harness import PYTHON, ROOT, env, free_port_block, request, run_launcher

pytestmark = pytest.mark.timeout(60)


def run_node(config, *extra, timeout_s=30):
    return subprocess.run(
        [PYTHON, "-m", "scribe.node", "--config", str(config), *extra],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def single_node_config(path, http_port, raft_port, extra=""):
    path.write_text(
        f"""
[node]
id = 1
data_dir = "./data"

[network]
client_port = {http_port}
raft_port = {raft_port}
{extra}
"""
    )
    return path


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("[node]\nid = 1\ncolour = 'red'\n", "colour"),
        ("[network]\nclient_port = 70000\n", "client_port"),
        ("[consensus]\nelection_timeout = 2\nheartbeat_timeout = 3\n", "election_timeout"),
        ("[node\nid = 1\n", "invalid TOML"),
    ],
)
def test_bad_config_exits_2_with_one_message(tmp_path, body, names):
    config = tmp_path / "bad.toml"
    config.write_text(body)
    result = run_node(config)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0] and names in lines[0]


def test_node_not_in_cluster_exits_2(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        """
[cluster]
nodes = [
    { id = 1, host = "127.0.0.1", client_port = 18001, raft_port = 19001 },
    { id = 2, host = "127.0.0.1", client_port = 18002, raft_port = 19002 },
]
"""
    )
    result = run_node(config, "--node-id", "4")
    assert result.returncode == 2
    assert "--node-id = 4 is not in [cluster] nodes" in result.stderr


def test_port_in_use_is_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = single_node_config(tmp_path / "c.toml", port, free_port_block(1))
        result = run_node(config)
        assert result.returncode == 1
        assert f"{port}" in result.stderr and "already in use" in result.stderr
        launched = run_launcher(
            "up", "-n", "1", "--dir", str(tmp_path / "cl"), "--http-port", str(port)
        )
        assert launched.returncode == 2
        assert f"port {port} (HTTP of node 1) is already in use" in launched.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "-n", "8"], "1 to 7 nodes"),
        (["up", "-n", "0"], "1 to 7 nodes"),
        (["up", "--http-port", "9001", "--raft-port", "9002"], "overlap"),
        (["up", "--transport", "carrier-pigeon"], "invalid choice"),
        (["stop", "9"], "no cluster"),
    ],
)
def test_launcher_bad_arguments_exit_2(tmp_path, args, message):
    result = run_launcher(*args, "--dir", str(tmp_path / "c"))
    assert result.returncode == 2
    assert message in result.stderr


def test_single_node_from_a_hand_written_config(tmp_path):
    """A 1-node cluster from a config without [cluster]; a small max_value_bytes gives 413."""
    base = free_port_block(2)
    config = single_node_config(
        tmp_path / "one.toml", base, base + 1, "\n[storage]\nmax_value_bytes = 1024\n"
    )
    proc = subprocess.Popen(
        [PYTHON, "-m", "scribe.node", "--config", str(config)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = request(base, "GET", "/health", timeout_s=1).json()
            except OSError:
                health = None
            if health and health["role"] == "leader":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the single node never became leader")
        assert request(base, "PUT", "/kv/small", b"x" * 1024).status == 200
        resp = request(base, "PUT", "/kv/big", b"x" * 1025)
        assert resp.status == 413 and resp.json()["error"]
        assert request(base, "GET", "/kv/small").body == b"x" * 1024
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
