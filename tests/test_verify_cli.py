"""scribe verify (trust on first use, consistency with the trusted head, a changed key refused) and
scribe monitor (an ALARM on a forged head, from a small fake node)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from scribe import Ledger
from scribe.__main__ import main
from scribe.http import LedgerBackend, create_app, start_server
from scribe.merkle import MerkleTree
from scribe.records import Record
from scribe.signing import load_or_create_key, sign_tree_head


class Swappable:
    """The backend behind one URL; tests swap it (a node replaced by another with another key)."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):
        return getattr(self.backend, name)


@pytest.fixture
def node(tmp_path):
    led = Ledger(str(tmp_path / "a"))
    front = Swappable(LedgerBackend(led))
    server = start_server(create_app(front))
    yield led, front, server
    server.stop()
    led.close()


def verify(*args):
    return main(["verify", *args])


def test_first_use_pins_then_consistency_is_checked(node, tmp_path, capsys):
    led, front, server = node
    state = str(tmp_path / "state.json")
    for i in range(10):
        led.put(f"k{i}", f"v{i}")
    assert verify("k3", "--node", server.url, "--state", state) == 0
    out = capsys.readouterr().out
    key = front.public_key().hex()
    assert "TRUST ON FIRST USE" in out and key in out
    assert (
        "verified: key='k3' seq=3" in out and "size=10" in out and led.tree_head().root.hex() in out
    )
    doc = json.load(open(state))
    assert doc["keys"][key]["urls"] == [server.url]
    assert doc["keys"][key]["head"]["tree_size"] == 10

    for i in range(10, 25):
        led.put(f"k{i % 12}", f"w{i}")
    assert verify("k3", "--node", server.url, "--state", state) == 0
    out = capsys.readouterr().out
    assert "TRUST ON FIRST USE" not in out
    assert "consistent with trusted size 10" in out and "size=25" in out
    assert json.load(open(state))["keys"][key]["head"]["tree_size"] == 25
    assert verify("k3", "--node", server.url, "--state", state, "--seq", "3") == 0
    assert "seq=3" in capsys.readouterr().out
    assert verify("k3", "--node", server.url, "--state", state, "--seq", "4") == 1
    assert verify("never", "--node", server.url, "--state", state) == 1
    assert verify("k3", "--node", server.url, "--state", state, "--public-key", key) == 0
    assert verify("k3", "--node", server.url, "--state", state, "--public-key", "ab" * 32) == 1


def test_a_node_whose_key_changed_is_refused(node, tmp_path, capsys):
    led, front, server = node
    state = str(tmp_path / "state.json")
    led.put("k", "v")
    assert verify("k", "--node", server.url, "--state", state) == 0
    old_key = front.public_key().hex()
    # the same URL now answers with another key (an impostor, or a node rebuilt from scratch)
    impostor = Ledger(str(tmp_path / "b"))
    try:
        impostor.put("k", "forged")
        front.backend = LedgerBackend(impostor)
        new_key = front.public_key().hex()
        capsys.readouterr()
        assert verify("k", "--node", server.url, "--state", state) == 1
        out = capsys.readouterr().out
        assert "HAS CHANGED" in out and old_key in out and new_key in out
        assert json.load(open(state))["keys"][old_key]["urls"] == [server.url]  # unchanged
        # the operator confirms the new key explicitly: accepted and re-pinned
        assert verify("k", "--node", server.url, "--state", state, "--public-key", new_key) == 0
        assert server.url in json.load(open(state))["keys"][new_key]["urls"]
    finally:
        front.backend = LedgerBackend(led)
        impostor.close()


def test_usage_and_unreachable(tmp_path, capsys):
    state = str(tmp_path / "s.json")
    assert verify("k", "--node", "http://127.0.0.1:1", "--state", state, "--timeout", "2") == 2
    assert verify("k", "--node", "not a url", "--state", state) == 2
    assert verify("k", "--node", "http://127.0.0.1:1", "--public-key", "xyz") == 2
    (tmp_path / "bad.json").write_text("{nope")
    assert verify("k", "--node", "http://127.0.0.1:1", "--state", str(tmp_path / "bad.json")) == 2
    assert main(["monitor", "--node", "http://127.0.0.1:1", "--duration", "0"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["verify", "k"])
    assert exc.value.code == 2


# ---- monitor against a fake node ---------------------------------------------------------------------


class FakeNode:
    """Serves /tree/head and /tree/consistency from a tree the test controls (and can fork)."""

    def __init__(self, key_dir, values):
        self.key = load_or_create_key(str(key_dir))
        self.set_records(values)
        self.lie_size = None  # when set, the head claims this size over the same tree
        self.consistency_levels: list[str] = []  # ?consistency= of every request
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                raw = parse_qs(url.query)
                fake.consistency_levels.append(raw.pop("consistency", ["linearizable"])[0])
                query = {k: int(v[0]) for k, v in raw.items()}
                if url.path == "/tree/head":
                    size = fake.tree.size
                    head = sign_tree_head(
                        fake.key, size, fake.tree.root(size), 1_700_000_000_000 + size
                    )
                    body = head.to_json()
                elif url.path == "/tree/consistency":
                    first, second = query["first"], query["second"]
                    proof = fake.tree.consistency_proof(first, second)
                    body = {"first": first, "second": second, "proof": [h.hex() for h in proof]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def set_records(self, values):
        records = [Record(i, 1_700_000_000_000, 1, b"k%d" % i, v) for i, v in enumerate(values)]
        self.tree = MerkleTree(b"".join(r.leaf_hash() for r in records))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fakes(tmp_path):
    made = []

    def make(name, values):
        fake = FakeNode(tmp_path / name, values)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.stop()


def monitor(*args):
    return main(["monitor", "--no-audit", "--interval", "0.05", *args])


def test_monitor_accepts_growth_and_alarms_on_a_rewritten_history(fakes, tmp_path, capsys):
    values = [b"v%d" % i for i in range(20)]
    a = fakes("a", values)
    state = str(tmp_path / "m.json")
    assert monitor("--node", a.url, "--state", state, "--duration", "0") == 0
    a.set_records(values + [b"more"] * 5)
    assert monitor("--node", a.url, "--state", state, "--duration", "0") == 0
    out = capsys.readouterr().out
    assert "size=25" in out and "consistent with 1 earlier head" in out
    # the monitor watches each node's own tree: heads and proofs asked for without a ReadIndex
    assert a.consistency_levels and set(a.consistency_levels) == {"stale"}
    # the node rewrites record 7 and appends: its new head cannot extend the one seen before
    forged = list(values + [b"more"] * 5)
    forged[7] = b"FORGED"
    a.set_records(forged + [b"x"] * 3)
    assert monitor("--node", a.url, "--state", state, "--duration", "0") == 1
    alarm = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ALARM")]
    assert len(alarm) == 1 and "NOT consistent" in alarm[0] and a.url in alarm[0]
    assert "size 25" in alarm[0] and "size 28" in alarm[0]


def test_monitor_alarms_when_two_nodes_disagree_on_a_size(fakes, capsys):
    values = [b"v%d" % i for i in range(12)]
    a = fakes("a", values)
    b = fakes("b", values[:11] + [b"fork"])
    assert monitor("--node", a.url, "--node", b.url, "--duration", "0") == 1
    out = capsys.readouterr().out
    alarm = [line for line in out.splitlines() if line.startswith("ALARM")][0]
    assert "two different roots for size 12" in alarm
    assert a.url in alarm and b.url in alarm
    assert a.tree.root().hex() in alarm and b.tree.root().hex() in alarm


def test_monitor_alarms_on_a_shrinking_tree_and_runs_for_its_duration(fakes, capsys):
    values = [b"v%d" % i for i in range(9)]
    a = fakes("a", values)
    b = fakes("b", values[:5])  # a lagging but honest node
    assert monitor("--node", a.url, "--node", b.url, "--duration", "0.2") == 0
    out = capsys.readouterr().out
    assert out.count(f"{a.url} size=9") >= 2 and "all consistent" in out
    state_less = fakes("c", values)
    seen = []

    def shrink_after_first(line):
        seen.append(line)

    from scribe.monitor import Alarm, Monitor
    from scribe.verify import TrustStore

    m = Monitor([state_less.url], TrustStore(None), audit=False, say=shrink_after_first)
    m.round()
    state_less.set_records(values[:4])
    with pytest.raises(Alarm, match="shrank"):
        m.round()
    m.close()
