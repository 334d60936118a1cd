"""Crashes and restarts of real node processes: nothing acknowledged is ever lost."""

import os
import signal
import subprocess
import time

import pytest

from .harness import PYTHON, ROOT, env, pid_alive, request

pytestmark = pytest.mark.timeout(120)


def test_killed_follower_catches_up_after_restart(make_cluster):
    c = make_cluster()
    c.up()
    leader = c.leader()
    follower = next(i for i in c.ids if i != leader)
    other = next(i for i in c.ids if i not in (leader, follower))
    c.put(leader, "before", "kill")
    c.launcher("kill", str(follower))
    assert c.health(follower) is None
    for i in range(20):  # the majority (2 of 3) keeps taking writes
        c.put(other if i % 2 else leader, f"after:failure:{i}", f"v{i}")
    assert c.get(other, "after:failure:19") == "v19"
    c.launcher("start", str(follower))
    for i in range(20):
        c.wait_value(follower, f"after:failure:{i}", f"v{i}")
    assert c.get(follower, "before") == "kill"


def test_killed_leader_is_replaced_and_acknowledged_writes_survive(make_cluster):
    c = make_cluster()
    c.up()
    leader = c.leader()
    acked = {}
    for i in range(20):
        key = f"pre:{i}"
        c.put(1 + i % 3, key, f"v{i}")
        acked[key] = f"v{i}"
    c.launcher("kill", str(leader))
    survivors = [i for i in c.ids if i != leader]
    killed_at = time.monotonic()
    c.put(survivors[0], "post:first", "new leader")  # retries 503/504 until a leader takes it
    took_s = time.monotonic() - killed_at
    acked["post:first"] = "new leader"
    new_leader = c.leader(among=survivors)
    assert new_leader != leader
    assert took_s < 3.0, f"no new leader took a write within 3 s ({took_s:.2f} s)"
    for i in range(10):
        c.put(survivors[i % 2], f"post:{i}", f"w{i}")
        acked[f"post:{i}"] = f"w{i}"
    for key, value in acked.items():
        assert c.get(survivors[1], key) == value
    c.launcher("start", str(leader))
    for key, value in acked.items():
        c.wait_value(leader, key, value)


def test_whole_cluster_restart_keeps_acknowledged_writes_and_down_leaves_nothing(make_cluster):
    c = make_cluster()
    c.up()
    acked = {}
    for i in range(30):
        c.put(1 + i % 3, f"durable:{i}", f"value-{i}")
        acked[f"durable:{i}"] = f"value-{i}"
    pids = [c.pid(i) for i in c.ids]
    result = c.launcher("down")
    assert "stopped 3 node(s)" in result.stdout
    assert not any(pid_alive(pid) for pid in pids)
    assert not list((c.path / "pids").glob("*.pid"))
    c.up()
    c.leader()
    for key, value in acked.items():
        assert c.get(1 + hash(key) % 3, key) == value
    # SIGKILL every node at once (a power cut), then restart: still nothing acknowledged is lost.
    for i in c.ids:
        c.launcher("kill", str(i))
    c.up()
    c.leader()
    for key, value in acked.items():
        assert c.get(2, key) == value
    pids = [c.pid(i) for i in c.ids]
    c.launcher("down")
    assert not any(pid_alive(pid) for pid in pids)


def test_foreground_up_stops_the_cluster_on_ctrl_c(tmp_path):
    from .harness import free_port_block

    base = free_port_block(4)
    cluster_dir = tmp_path / "fg"
    proc = subprocess.Popen(
        [PYTHON, "-m", "launcher", "up", "-n", "2", "--dir", str(cluster_dir),
         "--http-port", str(base), "--raft-port", str(base + 2), "--tick-ms", "50"],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    pids = []
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl+C" in line:
                break
        assert any("Ctrl+C" in line for line in lines), "".join(lines) + proc.stderr.read()
        pids = [int(p.read_text()) for p in (cluster_dir / "pids").glob("*.pid")]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
        assert request(base, "GET", "/health").status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped 2 node(s)" in out
        assert not any(pid_alive(p) for p in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
