#!/usr/bin/env python3
"""The 3-node tutorial, checked end to end against a running cluster: PASS/FAIL per step.

    ./scripts/start-cluster.sh && python tools/cluster_e2e_test.py
    python tools/cluster_e2e_test.py --dir ./cluster     # the nodes of that launcher cluster, step 7 too
    python tools/cluster_e2e_test.py http://127.0.0.1:8001 http://127.0.0.1:8002 http://127.0.0.1:8003

Step 7 (node failure and recovery) needs --dir, the launcher's cluster directory, to stop and start
a node through `python -m launcher`; with --dir and no URLs, the node URLs are read from the
configs the launcher wrote there. Exits 1 if any check fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

from checklib import Checks, Node, expect, node_urls, wait_until  # noqa: E402

from launcher.layout import HOST, ClusterDir, LauncherError  # noqa: E402
from scribe.errors import ScribeError  # noqa: E402

PERF_OPS = 100


def launcher(cluster_dir: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "launcher", *args, "--dir", cluster_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    expect(result.returncode == 0, f"launcher {' '.join(args)}: {result.stderr.strip()}")


def cluster_dir_urls(cluster_dir: str) -> list[str]:
    """The HTTP URLs of a launcher cluster's nodes, in node-id order, from its config files."""
    cdir = ClusterDir(cluster_dir)
    ids = cdir.node_ids()
    if not ids:
        raise LauncherError(f"no launcher cluster in {cluster_dir} (no node config files there)")
    return [f"http://{HOST}:{cdir.load(i).network.client_port}" for i in ids]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "urls",
        nargs="*",
        help="node URLs in node-id order (default: the nodes of --dir, else 8001..8003)",
    )
    parser.add_argument(
        "--dir", help="launcher cluster dir: its nodes, and the failure/recovery step"
    )
    args = parser.parse_args(argv)
    if args.dir and not args.urls:
        try:
            args.urls = cluster_dir_urls(args.dir)
        except (LauncherError, ScribeError, OSError) as exc:
            parser.error(str(exc))
    urls = node_urls(args.urls)
    nodes = [Node(u) for u in urls]
    run = uuid.uuid4().hex[:8]
    checks = Checks()

    def step2_health():
        for node in nodes:
            expect(node.get_json("/health")["status"] == "ok", f"{node.url} unhealthy")
        members = nodes[0].get_json("/cluster/members")["members"]
        expect(len(members) == len(nodes), f"{len(members)} members for {len(nodes)} URLs")
        leaders = {n.get_json("/cluster/leader")["leader_id"] for n in nodes}
        expect(len(leaders) == 1 and None not in leaders, f"nodes disagree on the leader {leaders}")

    data = [("user:alice", "Alice Smith"), ("user:bob", "Bob Johnson"), ("balance", "1000.50")]

    def step3_write_to_every_node():
        for i, (key, value) in enumerate(data):
            nodes[i % len(nodes)].put_json(f"{run}:{key}", value)

    def step4_read_from_any_node():
        for i, (key, value) in enumerate(data):
            reader = nodes[(i + 1) % len(nodes)]
            got = reader.get_text(f"{run}:{key}")
            expect(got == value, f"{reader.url} read {got!r}, expected {value!r}")

    def step5_replication():
        nodes[0].put_json(f"{run}:test:replication", "distributed data")
        for node in nodes:
            got = node.get_text(f"{run}:test:replication")
            expect(got == "distributed data", f"{node.url} read {got!r}")

    def step6_concurrent():
        errors = []

        def write(i: int) -> None:
            node = Node(urls[0])
            try:
                node.put_json(f"{run}:item:{i}", f"value{i}")
            except Exception as exc:  # collected and reported by the check
                errors.append(exc)
            finally:
                node.close()

        threads = [threading.Thread(target=write, args=(i,)) for i in range(1, 11)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expect(not errors, f"concurrent writes failed: {errors[:3]}")
        for i in range(1, 11):
            got = nodes[i % len(nodes)].get_text(f"{run}:item:{i}")
            expect(got == f"value{i}", f"item:{i} read {got!r}")

    def step7_failure_and_recovery():
        leader_id = nodes[0].get_json("/cluster/leader")["leader_id"]
        victim = next(i for i in range(1, len(nodes) + 1) if i != leader_id)
        survivor = next(i for i in range(1, len(nodes) + 1) if i not in (leader_id, victim))
        launcher(args.dir, "stop", str(victim))
        nodes[leader_id - 1].put_json(f"{run}:after:failure", "still working")
        got = nodes[survivor - 1].get_text(f"{run}:after:failure")
        expect(got == "still working", f"survivor read {got!r}")
        launcher(args.dir, "start", str(victim))
        back = nodes[victim - 1]
        back.close()
        wait_until(
            lambda: back.get_text(f"{run}:after:failure", stale=True) == "still working",
            15,
            f"node {victim} to catch up",
        )

    def step8_performance():
        started = time.perf_counter()
        for i in range(PERF_OPS):
            nodes[0].put_json(f"{run}:perf:{i}", f"value{i}")
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(PERF_OPS):
            expect(nodes[1 % len(nodes)].get_text(f"{run}:perf:{i}") == f"value{i}", f"perf:{i}")
        read = time.perf_counter() - started
        print(f"      {PERF_OPS} sequential writes: {PERF_OPS / wrote:.0f}/s, "
              f"{PERF_OPS} linearizable reads: {PERF_OPS / read:.0f}/s")  # fmt: skip

    def step9_metrics():
        for node in nodes:
            reply = node.request("GET", "/metrics")
            expect(reply.status == 200 and b"scribe_raft_term" in reply.body, f"{node.url}")

    checks.run("step 2: every node healthy, one leader", step2_health)
    checks.run("step 3: write to each node", step3_write_to_every_node)
    checks.run("step 4: read from another node", step4_read_from_any_node)
    checks.run("step 5: replication to every node", step5_replication)
    checks.run("step 6: concurrent writes", step6_concurrent)
    if args.dir:
        checks.run("step 7: follower down, writes go on, it catches up", step7_failure_and_recovery)
    else:
        print("SKIP  step 7: node failure and recovery (needs --dir)")
    checks.run("step 8: performance", step8_performance)
    checks.run("step 9: metrics from every node", step9_metrics)
    for node in nodes:
        node.close()
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
