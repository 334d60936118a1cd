"""scribe.config: the seed's files load, and every bad config fails with one message naming file and key."""

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from scribe.config import exit_on_config_error, load_config, load_config_or_exit
from scribe.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

CLUSTER = """
[node]
id = 2
data_dir = "data"

[cluster]
nodes = [
    { id = 1, host = "127.0.0.1", client_port = 8001, raft_port = 9001 },
    { id = 2, host = "127.0.0.1", client_port = 8002, raft_port = 9002 },
    { id = 3, host = "127.0.0.1", client_port = 8003, raft_port = 9003 },
]
"""


def write(tmp_path: Path, text: str, name: str = "node.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str, node_id: int | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, node_id)
    message = str(info.value)
    assert str(path) in message, message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "name", ["config.toml", "config-node1.toml", "config-node2.toml", "config-node3.toml"]
)
def test_repo_configs_load(tmp_path, name):
    shutil.copy(
        REPO / name, tmp_path / name
    )  # data_dir is relative to the file: keep the repo clean
    config = load_config(tmp_path / name)
    assert config.node.data_dir.is_dir()
    assert config.node.data_dir.is_relative_to(tmp_path)
    if name == "config.toml":
        assert config.node.id == 1 and config.node.address == "127.0.0.1:8001"
        assert (
            config.network.client_port == 8080 and config.network.raft_port == 8081
        )  # raft_tcp_port
        assert (
            config.storage.segment_size == 1048576 and config.storage.s3_bucket == "scribe-ledger"
        )
        assert config.storage.s3_region == "us-east-1"
        assert config.storage.s3_endpoint == "http://localhost:9000"
        assert (config.consensus.election_timeout, config.consensus.heartbeat_timeout) == (10, 3)
        assert config.consensus.tick_ms == 100 and config.consensus.max_log_entries == 1000
        assert [m.id for m in config.cluster.nodes] == [1]  # no [cluster]: a cluster of one
        assert config.peers == ()
    else:
        i = int(name[len("config-node")])
        assert config.node.id == i
        assert config.network.client_port == 8000 + i and config.network.raft_port == 9000 + i
        assert config.network.transport == "tcp"
        assert config.node.data_dir == (tmp_path / "data" / f"node{i}").resolve()
        assert [m.id for m in config.cluster.nodes] == [1, 2, 3]
        assert [p.id for p in config.peers] == [m for m in (1, 2, 3) if m != i]
        assert config.self_member.client_url == f"http://127.0.0.1:{8000 + i}"


def test_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.node.id == 1 and config.node.data_dir == (tmp_path / "data").resolve()
    assert config.network.listen_addr == "127.0.0.1" and config.network.transport == "tcp"
    assert config.consensus.tick_ms == 100
    assert config.consensus.election_timeout == 10 and config.consensus.heartbeat_timeout == 3
    assert config.storage.max_value_bytes == 16 * 1024 * 1024
    assert config.storage.ledger_options()["flush_every_ms"] == 500
    assert config.security.api_token is None
    assert len(config.cluster.nodes) == 1


def test_node_id_override_picks_the_cluster_entry(tmp_path):
    path = write(tmp_path, CLUSTER)
    assert load_config(path).node.id == 2
    config = load_config(path, node_id=3)
    assert config.node.id == 3
    assert (config.network.client_port, config.network.raft_port) == (8003, 9003)


def test_api_token_is_never_in_repr(tmp_path):
    config = load_config(write(tmp_path, '[security]\napi_token = "s3cret-token"\n'))
    assert config.security.api_token == "s3cret-token"
    assert "s3cret-token" not in repr(config)


def test_curve_key_paths_are_resolved(tmp_path):
    text = '[security]\ncurve_secret_key_file = "keys/node1.key_secret"\ncurve_public_keys_dir = "keys"\n'
    config = load_config(write(tmp_path, text))
    assert (
        config.security.curve_secret_key_file == (tmp_path / "keys" / "node1.key_secret").resolve()
    )
    assert config.security.curve_public_keys_dir == (tmp_path / "keys").resolve()


def test_raft_port_alias_both_agreeing(tmp_path):
    config = load_config(write(tmp_path, "[network]\nraft_port = 9100\nraft_tcp_port = 9100\n"))
    assert config.network.raft_port == 9100


def test_raft_port_alias_disagreeing(tmp_path):
    msg = config_error(tmp_path, "[network]\nraft_port = 9100\nraft_tcp_port = 9101\n")
    assert "raft_tcp_port" in msg and "9100" in msg


def test_unknown_section(tmp_path):
    msg = config_error(tmp_path, "[netwrok]\nclient_port = 1\n")
    assert "unknown section [netwrok]" in msg and "[network]" in msg


def test_unknown_key(tmp_path):
    msg = config_error(tmp_path, "[storage]\nsegmnt_size = 10\n")
    assert "[storage]" in msg and "'segmnt_size'" in msg and '"segment_size"' in msg


def test_unknown_top_level_key(tmp_path):
    assert "'id'" in config_error(tmp_path, "id = 1\n")


def test_unknown_key_in_cluster_node(tmp_path):
    text = "[cluster]\nnodes = [{ id = 1, client_port = 8001, raft_port = 9001, colour = 1 }]\n"
    assert "[cluster] nodes[0]" in config_error(tmp_path, text)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[network]\nclient_port = "8080"\n', "[network] client_port"),
        ("[network]\nclient_port = true\n", "[network] client_port"),
        ("[consensus]\ntick_ms = 1.5\n", "[consensus] tick_ms"),
        ("[node]\ndata_dir = 3\n", "[node] data_dir"),
        ("[security]\napi_token = 1234\n", "[security] api_token"),
        ("node = 3\n[storage]\n", "node"),
        ('[network]\ntransport = "udp"\n', "[network] transport"),
        ('[node]\naddress = "nowhere"\n', "[node] address"),
        ("[cluster]\nnodes = [1, 2]\n", "[cluster] nodes[0]"),
        ('[cluster]\nnodes = "all"\n', "[cluster] nodes"),
        ("[storage]\nsegment_size = 0\n", "[storage] segment_size"),
    ],
)
def test_wrong_type_or_value(tmp_path, text, key):
    assert key in config_error(tmp_path, text)


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_port_out_of_range(tmp_path, port):
    msg = config_error(tmp_path, f"[network]\nclient_port = {port}\n")
    assert "[network] client_port" in msg and "1..65535" in msg


def test_cluster_port_out_of_range(tmp_path):
    text = "[cluster]\nnodes = [{ id = 1, client_port = 80000, raft_port = 9001 }]\n"
    assert "[cluster] nodes[0] client_port" in config_error(tmp_path, text)


def test_duplicate_node_ids(tmp_path):
    msg = config_error(tmp_path, CLUSTER.replace("id = 3,", "id = 2,"))
    assert "[cluster] nodes[2] id" in msg and "duplicate" in msg


def test_duplicate_ports(tmp_path):
    msg = config_error(tmp_path, CLUSTER.replace("raft_port = 9003", "raft_port = 9001"))
    assert "[cluster] nodes[2] raft_port" in msg and "nodes[0] raft_port" in msg


def test_client_port_equal_to_raft_port(tmp_path):
    msg = config_error(tmp_path, "[network]\nclient_port = 9000\nraft_port = 9000\n")
    assert "[network] raft_port" in msg


def test_node_not_in_cluster(tmp_path):
    msg = config_error(tmp_path, CLUSTER.replace("id = 2\n", "id = 7\n", 1))
    assert "[node] id = 7" in msg and "ids 1, 2, 3" in msg


def test_node_id_override_not_in_cluster(tmp_path):
    assert "--node-id = 9" in config_error(tmp_path, CLUSTER, node_id=9)


def test_network_port_disagreeing_with_cluster_entry(tmp_path):
    msg = config_error(tmp_path, CLUSTER + "[network]\nclient_port = 8005\n")
    assert "[network] client_port" in msg and "8002" in msg


def test_election_timeout_not_above_heartbeat(tmp_path):
    msg = config_error(tmp_path, "[consensus]\nelection_timeout = 3\nheartbeat_timeout = 3\n")
    assert "[consensus] election_timeout" in msg and "heartbeat_timeout" in msg


def test_invalid_toml_names_the_line(tmp_path):
    msg = config_error(tmp_path, "[node]\nid = 1\ndata_dir = \n")
    assert "invalid TOML" in msg and "line 3" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_data_dir_uncreatable(tmp_path):
    (tmp_path / "plainfile").write_text("x")
    msg = config_error(tmp_path, '[node]\ndata_dir = "plainfile/data"\n')
    assert "[node] data_dir" in msg and "cannot be created" in msg


def test_data_dir_is_a_file(tmp_path):
    (tmp_path / "plainfile").write_text("x")
    msg = config_error(tmp_path, '[node]\ndata_dir = "plainfile"\n')
    assert "[node] data_dir" in msg and "not a directory" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any directory")
def test_data_dir_unwritable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        msg = config_error(tmp_path, '[node]\ndata_dir = "locked"\n')
        assert "[node] data_dir" in msg and "readable and writable" in msg
    finally:
        locked.chmod(0o700)


def test_exit_on_config_error_prints_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "[network]\nclient_port = 0\n")
    with pytest.raises(SystemExit) as info, exit_on_config_error("scribe-node"):
        load_config(path)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("scribe-node: config error:") and "[network] client_port" in err


def test_load_config_or_exit(tmp_path, capsys):
    assert load_config_or_exit(write(tmp_path, "")).node.id == 1
    with pytest.raises(SystemExit) as info:
        load_config_or_exit(write(tmp_path, "[bogus]\n"))
    assert info.value.code == 2 and "[bogus]" in capsys.readouterr().err
