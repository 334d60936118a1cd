"""`python -m scribe.node --config` refuses each bad input of DESIGN §6 with one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)

CLUSTER = """
[node]
id = {node_id}
data_dir = "{data_dir}"

[cluster]
nodes = [
    {{ id = 1, host = "127.0.0.1", client_port = 18001, raft_port = 19001 }},
    {{ id = {second_id}, host = "127.0.0.1", client_port = 18002, raft_port = 19002 }},
]
"""


def cluster_text(node_id=1, second_id=2, data_dir="./data") -> str:
    return CLUSTER.format(node_id=node_id, second_id=second_id, data_dir=data_dir)


CASES = {
    "unknown key": ("[network]\nlisten_adr = '127.0.0.1'\n", "[network]", "listen_adr"),
    "wrong type": ("[consensus]\ntick_ms = 'fast'\n", "[consensus] tick_ms", "integer"),
    "port out of range": ("[network]\nraft_port = 0\n", "[network] raft_port", "1..65535"),
    "duplicate ids": (cluster_text(second_id=1), "[cluster] nodes[1] id", "duplicate"),
    "node not in cluster": (cluster_text(node_id=5), "[node] id = 5", "not in [cluster]"),
    "election not above heartbeat": (
        "[consensus]\nelection_timeout = 3\nheartbeat_timeout = 4\n",
        "[consensus] election_timeout",
        "heartbeat_timeout",
    ),
    "half of the curve keys": (
        "[security]\ncurve_public_keys_dir = 'keys'\n",
        "[security] curve_public_keys_dir",
        "curve_secret_key_file",
    ),
    "empty token": ("[security]\napi_token = ''\n", "[security] api_token", "non-empty"),
}


def run_node(config: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "scribe.node", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_refused(result: subprocess.CompletedProcess, config: Path, *names: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0], lines[0]
    for name in names:
        assert name in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_one_line_and_exit_2(tmp_path, case):
    text, *names = CASES[case]
    config = tmp_path / "node.toml"
    config.write_text(text)
    assert_refused(run_node(config), config, *names)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any directory")
def test_unreadable_data_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    config = tmp_path / "node.toml"
    config.write_text("[node]\ndata_dir = 'locked/data'\n")
    try:
        assert_refused(run_node(config), config, "[node] data_dir")
    finally:
        locked.chmod(0o700)


def test_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "occupied").write_text("not a directory")
    config = tmp_path / "node.toml"
    config.write_text("[node]\ndata_dir = 'occupied'\n")
    assert_refused(run_node(config), config, "[node] data_dir", "not a directory")
