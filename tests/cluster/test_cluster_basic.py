"""A running 3-node tcp cluster: the seed tutorial's steps 2-6 and the HTTP API through any node."""

import base64
import http.server
import importlib.util
import json
import subprocess
import sys
import threading

import pytest

from .harness import PYTHON, ROOT, quote, request

pytestmark = pytest.mark.timeout(120)


def test_every_node_is_healthy_and_agrees_on_one_leader(shared_cluster):
    c = shared_cluster
    healths = [c.health(i) for i in c.ids]
    assert all(h is not None and h["status"] == "ok" for h in healths)
    assert [h["node_id"] for h in healths] == c.ids
    leader = c.leader()
    roles = {h["node_id"]: h["role"] for h in (c.health(i) for i in c.ids)}
    assert [i for i, role in roles.items() if role == "leader"] == [leader]
    assert all(role == "follower" for i, role in roles.items() if i != leader)


def test_members_leader_and_status(shared_cluster):
    c = shared_cluster
    members = request(c.port(2), "GET", "/cluster/members").json()["members"]
    assert [m["id"] for m in members] == c.ids
    assert [m["client_port"] for m in members] == [c.port(i) for i in c.ids]
    assert [m["raft_port"] for m in members] == [c.raft_port + i - 1 for i in c.ids]
    leader = request(c.port(3), "GET", "/cluster/leader").json()
    assert leader["leader_id"] == c.leader()
    assert leader["url"] == f"http://127.0.0.1:{c.port(leader['leader_id'])}"
    status = request(c.port(1), "GET", "/cluster/status").json()
    for field in ("node_id", "role", "leader_id", "term", "commit_index", "applied_index"):
        assert field in status
    assert status["applied_index"] <= status["commit_index"]


def test_tutorial_write_to_each_node_read_from_every_other(shared_cluster):
    c = shared_cluster
    writes = {
        1: ("user:alice", "Alice Smith"),
        2: ("user:bob", "Bob Johnson"),
        3: ("balance", "1000.50"),
    }
    for node_id, (key, value) in writes.items():
        answer = c.put(node_id, key, value)
        assert answer["key"] == key and answer["seq"] >= 0 and answer["index"] >= 1
    for writer, (key, value) in writes.items():
        for reader in c.ids:
            if reader != writer:
                # Linearizable by default: a read after an acknowledged write sees it.
                assert c.get(reader, key) == value
    c.put(1, "test:replication", "distributed data")
    assert [c.get(i, "test:replication") for i in c.ids] == ["distributed data"] * 3


def test_concurrent_writes_then_reads(shared_cluster):
    c = shared_cluster
    errors = []

    def write(i: int) -> None:
        try:
            c.put(1 + i % 3, f"item:{i}", f"value{i}")
        except AssertionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    for i in range(30):
        assert c.get(1 + (i + 1) % 3, f"item:{i}") == f"value{i}"
    seqs = [
        int(request(c.port(2), "GET", f"/kv/item%3A{i}").headers["x-scribe-seq"]) for i in range(30)
    ]
    assert len(set(seqs)) == 30  # one record each


def test_raw_routes_batch_delete_history_range_records(shared_cluster):
    c = shared_cluster
    port = c.port(2)  # a follower or the leader: writes are forwarded either way
    value = bytes(range(256))
    resp = request(port, "PUT", "/kv/" + quote("bin/key"), value)
    assert resp.status == 200, resp.body
    got = request(c.port(3), "GET", "/kv/" + quote("bin/key"))
    assert got.status == 200 and got.body == value
    assert got.headers["content-type"] == "application/octet-stream"
    assert int(got.headers["x-scribe-seq"]) == resp.json()["seq"]
    ops = {"ops": [{"key": "b:1", "value": "one"}, {"key": "b:2", "value": "two"}]}
    resp = request(
        port, "POST", "/batch", json.dumps(ops).encode(), {"Content-Type": "application/json"}
    )
    assert resp.status == 200, resp.body
    deleted = request(c.port(1), "DELETE", "/kv/b:1")
    assert deleted.status == 200
    assert request(c.port(3), "GET", "/kv/b:1").status == 404
    history = request(c.port(3), "GET", "/history/b:1").json()
    assert [v["op"] for v in history] == [1, 2]
    items = request(c.port(1), "GET", "/range?prefix=b:").json()
    assert [(i["key"], i["value"]) for i in items] == [("b:2", "two")]
    records = request(c.port(3), "GET", "/records?start=0&limit=10000").json()
    assert [r["seq"] for r in records] == list(range(len(records)))


def test_every_replica_holds_the_same_records(shared_cluster):
    c = shared_cluster
    c.put(1, "converge", "now")
    for node_id in c.ids:
        c.wait_value(node_id, "converge", "now")
    dumps = [request(c.port(i), "GET", "/records?start=0&limit=10000").body for i in c.ids]
    assert dumps[0] == dumps[1] == dumps[2]


def test_replicas_sign_the_same_root_at_the_same_size(shared_cluster):
    from scribe import verify_consistency
    from scribe.signing import verify_tree_head_signature

    c = shared_cluster
    c.put(2, "tree:same", "root")
    for node_id in c.ids:
        c.wait_value(node_id, "tree:same", "root")
    heads = [request(c.port(i), "GET", "/tree/head").json() for i in c.ids]
    assert len({h["tree_size"] for h in heads}) == 1, heads
    assert len({h["root"] for h in heads}) == 1, heads
    assert len({h["public_key"] for h in heads}) == 3  # each node signs with its own key
    for h in heads:
        assert verify_tree_head_signature(
            h["public_key"], h["tree_size"], bytes.fromhex(h["root"]), h["ts_ms"], h["signature"]
        )
    # Every node proves that an earlier head of another node is a prefix of its own tree.
    size = heads[0]["tree_size"]
    c.put(3, "tree:later", "grows")
    c.wait_value(1, "tree:later", "grows")
    later = request(c.port(1), "GET", "/tree/head").json()
    proof = request(c.port(1), "GET", f"/tree/consistency?first={size}&second={later['tree_size']}")
    assert verify_consistency(
        size,
        later["tree_size"],
        bytes.fromhex(heads[1]["root"]),
        bytes.fromhex(later["root"]),
        [bytes.fromhex(x) for x in proof.json()["proof"]],
    )


def test_bad_input_over_http_is_refused_and_the_node_stays_right(shared_cluster):
    c = shared_cluster
    port = c.port(3)
    resp = request(
        port, "PUT", "/put", b'{"key": "x", "value": ', {"Content-Type": "application/json"}
    )
    assert resp.status == 400 and resp.json()["error"]
    resp = request(
        port, "PUT", "/put", b'{"key": 5, "value": "x"}', {"Content-Type": "application/json"}
    )
    assert resp.status == 400
    resp = request(port, "POST", "/batch", b'{"ops": "nope"}', {"Content-Type": "application/json"})
    assert resp.status == 400
    resp = request(port, "PUT", "/kv/" + "k" * 5000, b"v")
    assert resp.status == 400
    resp = request(port, "GET", "/get/never-written")
    assert resp.status == 404 and resp.json()["error"]
    big = b"x" * (16 * 1024 * 1024 + 1)  # one byte over the default max_value_bytes
    resp = request(port, "PUT", "/kv/too-big", big, timeout_s=30)
    assert resp.status == 413
    c.put(3, "after-bad-input", "fine")
    assert c.get(1, "after-bad-input") == "fine"


def test_stale_reads_and_metrics(shared_cluster):
    c = shared_cluster
    c.put(2, "stale:key", "v")
    c.wait_value(3, "stale:key", "v")
    metrics = request(c.port(1), "GET", "/metrics").body.decode()
    for name in (
        "scribe_raft_fsync_seconds_bucket",
        "scribe_raft_proposals_total",
        "scribe_raft_committed_entries_total",
        "scribe_raft_messages_sent_total{peer=",
        "scribe_raft_messages_received_total{peer=",
        "scribe_raft_term",
        "scribe_raft_applied_index",
    ):
        assert name in metrics, name


def test_launcher_status_and_refusals(shared_cluster):
    c = shared_cluster
    status = c.launcher("status")
    lines = status.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["ID", "PID", "ROLE"]
    assert len(lines) == 4 and all(line.split()[-1] == "yes" for line in lines[1:])
    again = c.launcher("up", "-n", "3", "--http-port", str(c.http_port + 100), check=False)
    assert again.returncode == 2 and "already running" in again.stderr


def test_contract_checker_passes_the_node_routes(shared_cluster):
    checker = ROOT.parent / "shared" / "contract" / "check_contract.py"
    if not checker.exists():
        pytest.skip("the shared contract checker is not available here")
    result = subprocess.run(
        [PYTHON, str(checker), "node", f"http://127.0.0.1:{shared_cluster.port(2)}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "tool",
    [
        ["e2e_test.py"],
        ["stress_test.py", "--ops", "200", "--threads", "8"],
        ["cluster_e2e_test.py"],
        ["bench_cluster.py", "--duration", "1", "--clients", "4", "--workload", "mixed"]
        + ["--preload-keys", "50", "--quiet"],
    ],
    ids=lambda tool: tool[0],
)
def test_tools_pass_against_the_cluster(shared_cluster, tool):
    urls = [f"http://127.0.0.1:{shared_cluster.port(i)}" for i in shared_cluster.ids]
    url_args = ["--nodes", ",".join(urls)] if tool[0] == "bench_cluster.py" else urls
    result = subprocess.run(
        [PYTHON, str(ROOT / "tools" / tool[0]), *tool[1:], *url_args],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_cluster_e2e_finds_the_nodes_of_a_launcher_dir(make_cluster, tmp_path):
    """--dir alone: the URLs come from the launcher's configs, and step 7 stops and restarts a
    follower through the launcher."""
    cluster = make_cluster()
    cluster.up()
    cluster.leader()
    tool = str(ROOT / "tools" / "cluster_e2e_test.py")
    result = subprocess.run(
        [PYTHON, tool, "--dir", str(cluster.path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8/8 checks passed" in result.stdout and "SKIP" not in result.stdout
    empty = subprocess.run(
        [PYTHON, tool, "--dir", str(tmp_path / "none")], capture_output=True, text=True, timeout=30
    )
    assert empty.returncode == 2
    assert "no launcher cluster in" in empty.stderr and "usage:" in empty.stderr


def test_bench_cluster_reports_cpu_per_node(shared_cluster):
    """--pids: each node's CPU during the timed run, per op, split by thread kind."""
    urls = [f"http://127.0.0.1:{shared_cluster.port(i)}" for i in shared_cluster.ids]
    pids = [shared_cluster.pid(i) for i in shared_cluster.ids]
    base = [PYTHON, str(ROOT / "tools" / "bench_cluster.py"), "--nodes", ",".join(urls)]
    base += ["--duration", "1", "--clients", "4", "--workload", "put", "--quiet"]
    base += ["--pids", ",".join(map(str, pids))]
    result = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert row["ops"] > 0 and [c["pid"] for c in row["cpu"]] == pids
    for node in row["cpu"]:
        assert node["label"].startswith("config-node") and node["cpu_us_per_op"] > 0
        assert {"loop", "http", "zeromq"} <= set(node["threads_cpu_us_per_op"])
        assert node["ctx_switches_per_op"] > 0
    table = subprocess.run(base, capture_output=True, text=True, timeout=90)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "scribe CPU during the run" in table.stdout
    assert all(str(pid) in table.stdout for pid in pids)


def test_bench_cluster_says_which_role_its_clients_talk_to(shared_cluster):
    """--leader-only and --followers-only pick nodes by role; spread load names the roles of the
    nodes that get clients (one client: node 1 only, leader or follower)."""
    urls = [f"http://127.0.0.1:{shared_cluster.port(i)}" for i in shared_cluster.ids]
    base = [PYTHON, str(ROOT / "tools" / "bench_cluster.py"), "--nodes", ",".join(urls)]
    base += ["--duration", "0.5", "--workload", "put", "--quiet", "--json"]
    leader_url = f"http://127.0.0.1:{shared_cluster.port(shared_cluster.leader())}"
    node1 = "leader" if leader_url == urls[0] else "follower"
    for extra, to in [
        (["--clients", "2", "--leader-only"], "leader"),
        (["--clients", "2", "--followers-only"], "followers"),
        (["--clients", "1"], node1),
    ]:
        result = subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        (row,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert row["to"] == to and row["ops"] > 0
    both = subprocess.run(
        [*base, "--leader-only", "--followers-only"], capture_output=True, text=True, timeout=60
    )
    assert both.returncode == 2 and "not allowed with" in both.stderr


def _load_bench_cluster():
    spec = importlib.util.spec_from_file_location(
        "bench_cluster_tool", ROOT / "tools" / "bench_cluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bench_cluster_rounds_take_turns_and_pool():
    """--rounds: S E, E S, S E...; a row pools its rounds; the ratio is of the pooled rates and
    of each round's pair."""
    bench = _load_bench_cluster()
    assert bench.round_order(1, 2) == [(0, 0), (0, 1)]
    assert bench.round_order(3, 2) == [(0, 0), (0, 1), (1, 1), (1, 0), (2, 0), (2, 1)]
    assert bench.round_order(2, 1) == [(0, 0), (1, 0)]
    args = bench.parse_args(["--workload", "put", "--rounds", "2"])
    fast = bench.Round([0.001] * 300, 0, 1.0)
    slow = bench.Round([0.002] * 100, 1, 1.0)
    scribe = bench.pool("scribe", args, [fast, slow])
    assert scribe["ops"] == 400 and scribe["errors"] == 1 and scribe["ops_per_s"] == 200
    assert scribe["round_ops_per_s"] == [300, 100] and scribe["rounds"] == 2
    etcd = bench.pool("etcd", args, [bench.Round([0.002] * 200, 0, 1.0)] * 2)
    ratio = bench.compare(scribe, etcd)
    assert ratio["ratio_vs_etcd"] == 1.0 and ratio["round_ratios_vs_etcd"] == [1.5, 0.5]
    assert (ratio["round_ratio_min"], ratio["round_ratio_max"]) == (0.5, 1.5)


class _FakeEtcdGateway(http.server.BaseHTTPRequestHandler):
    """etcd's v3 JSON gateway as far as bench_cluster uses it: a leader, puts that succeed."""

    protocol_version = "HTTP/1.1"
    keys: list[bytes] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        if self.path == "/v3/kv/put":
            self.keys.append(base64.b64decode(body["key"]))
            answer = {}
        elif self.path == "/v3/maintenance/status":
            answer = {"leader": "7", "header": {"member_id": "7"}}
        else:
            self.send_error(404)
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_bench_cluster_rounds_against_both_systems(shared_cluster):
    """--rounds 3 with --etcd: both rows pool three rounds, no round rewrites another's keys,
    and the scribe row carries the ratios to etcd."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeEtcdGateway)
    _FakeEtcdGateway.keys = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        urls = [f"http://127.0.0.1:{shared_cluster.port(i)}" for i in shared_cluster.ids]
        base = [PYTHON, str(ROOT / "tools" / "bench_cluster.py"), "--nodes", ",".join(urls)]
        base += ["--leader-only", "--duration", "0.3", "--rounds", "3", "--clients", "2", "--quiet"]
        cmd = [*base, "--etcd", f"http://127.0.0.1:{server.server_address[1]}"]
        result = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        scribe, etcd = rows
        for row in rows:
            assert row["rounds"] == 3 and len(row["round_ops_per_s"]) == 3 and row["ops"] > 0
        assert etcd["ops"] == len(_FakeEtcdGateway.keys) == len(set(_FakeEtcdGateway.keys))
        assert scribe["ratio_vs_etcd"] == round(scribe["ops_per_s"] / etcd["ops_per_s"], 3)
        assert len(scribe["round_ratios_vs_etcd"]) == 3
        table = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert table.returncode == 0, table.stdout + table.stderr
        assert "3 rounds of each system" in table.stdout and "per round min" in table.stdout
        alone = subprocess.run(base, capture_output=True, text=True, timeout=60)  # no --etcd
        assert alone.returncode == 0, alone.stdout + alone.stderr
        assert "(3 rounds, pooled)" in alone.stdout and "scribe/etcd" not in alone.stdout
    finally:
        server.shutdown()
        server.server_close()
