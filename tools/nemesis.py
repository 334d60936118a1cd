#!/usr/bin/env python3
"""Prove the cluster survives: clients write and read while a nemesis breaks the cluster, then the
history is checked for linearizability and the ledger's promises (scribe.checker).

    python tools/nemesis.py --nemesis kill-leader                 # 60 s, 10 clients, 3 nodes
    python tools/nemesis.py --nemesis partition-majority --duration 30 --seed 7
    python tools/nemesis.py --nemesis all --duration 20           # every nemesis, one after another

It starts its own cluster (`python -m launcher up --enable-fault-injection`) in a temporary
directory on free ports, runs N client threads that put unique values, delete and read a few keys
through random nodes, while the nemesis runs its schedule; then it heals everything, waits for the
nodes to agree, reads the final history of every key and every node's tree head, checks, prints a
verdict with the seed and the history file, and stops only the processes it started.

Nemeses: kill-follower, kill-leader (kill -9, then restart), pause (SIGSTOP longer than the
election timeout, SIGCONT), partition-majority, partition-leader (the leader alone in a minority),
bridge (two sides that only a middle node connects), crash-all (kill -9 every node at once during
writes), fsync (a node's log sync fails: it stops without acknowledging), mixed (a random one each
round), none.

Exit codes: 0 pass, 1 a violation, 3 unknown (the checker ran out of time), 2 bad arguments or the
cluster would not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from launcher import faults as launcher_faults  # noqa: E402
from launcher.layout import ClusterDir  # noqa: E402
from launcher.procs import running_pid, spawn_node, wait_gone  # noqa: E402
from scribe.checker import (  # noqa: E402
    FAIL,
    OK,
    PASS,
    TIMED_OUT,
    UNKNOWN,
    VIOLATION,
    FinalVersion,
    HeadSeen,
    HistoryFile,
    Op,
    check_ledger,
    check_linearizable,
)
from scribe.client import Client, NodeUnreachableError  # noqa: E402
from scribe.errors import KeyNotFoundError, NoLeaderError, OutcomeUnknownError  # noqa: E402

NEMESES = (
    "none",
    "kill-follower",
    "kill-leader",
    "pause",
    "partition-majority",
    "partition-leader",
    "bridge",
    "crash-all",
    "fsync",
)
CHOICES = (*NEMESES, "mixed", "all")

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
# A client waits this long for an answer: above the node's write timeout (5 s) plus its slack.
CLIENT_TIMEOUT_S = 8.0
# After a refused request a client backs off this long, so a dead node is not hammered.
FAIL_BACKOFF_S = 0.02
HEAD_SAMPLE_INTERVAL_S = 0.25
CONVERGE_TIMEOUT_S = 45.0
# After a heal, the nemesis waits at most this long for a leader before its quiet time starts.
RECOVERY_WAIT_S = 15.0
LAUNCH_TIMEOUT_S = 90.0
PROBE_TIMEOUT_S = 1.0
# Share of client operations by kind (the rest are puts).
GET_SHARE = 0.35
DELETE_SHARE = 0.05


@dataclass
class Settings:
    nemesis: str
    duration_s: float
    clients: int
    keys: int
    nodes: int
    seed: int
    tick_ms: int
    election_ticks: int
    check_timeout_s: float
    history: Path
    progress: bool

    @property
    def election_s(self) -> float:
        return self.tick_ms * self.election_ticks / 1000.0


@dataclass
class Recorder:
    """The history, shared by the client threads."""

    started: float
    ops: list[Op] = field(default_factory=list)
    heads: list[HeadSeen] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    def new_op(self, **fields) -> Op:
        with self.lock:
            op = Op(self.next_id, call=self.now(), **fields)
            self.next_id += 1
            self.ops.append(op)
        return op

    def event(self, text: str, **fields) -> None:
        with self.lock:
            self.events.append({"t": round(self.now(), 3), "event": text, **fields})

    def counts(self) -> dict[str, int]:
        with self.lock:
            out = {OK: 0, FAIL: 0, UNKNOWN: 0}
            for op in self.ops:
                if op.outcome != UNKNOWN or op.ret < math.inf or op.error is not None:
                    out[op.outcome] += 1
            return out


# ---- the cluster ---------------------------------------------------------------------------------


class Cluster:
    """A cluster this tool started: it signals only the pids it started or read from its pid files."""

    def __init__(self, path: Path, settings: Settings, http_port: int) -> None:
        self.cdir = ClusterDir(path)
        self.settings = settings
        self.http_port = http_port
        self.raft_port = http_port + settings.nodes
        self.ids = list(range(1, settings.nodes + 1))
        self.pids: set[int] = set()
        self.children: list[subprocess.Popen] = []
        self.paused: set[int] = set()

    def url(self, node_id: int) -> str:
        return f"http://127.0.0.1:{self.http_port + node_id - 1}"

    def launcher(
        self, *args: str, timeout_s: float = LAUNCH_TIMEOUT_S
    ) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        result = subprocess.run(
            [sys.executable, "-m", "launcher", *args, "--dir", str(self.cdir.path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        self._record_pids()
        return result

    def up(self) -> None:
        s = self.settings
        result = self.launcher(
            "up",
            "-n",
            str(s.nodes),
            "--http-port",
            str(self.http_port),
            "--raft-port",
            str(self.raft_port),
            "--tick-ms",
            str(s.tick_ms),
            "--election-timeout",
            str(s.election_ticks),
            "--detach",
            "--enable-fault-injection",
        )
        if result.returncode != 0:
            raise RuntimeError(f"the cluster did not start:\n{result.stdout}\n{result.stderr}")

    def _record_pids(self) -> None:
        for node_id in self.ids:
            pid = self.cdir.read_pid(node_id)
            if pid is not None:
                self.pids.add(pid)

    def pid(self, node_id: int) -> int | None:
        return running_pid(self.cdir, node_id)

    def kill(self, node_ids: list[int]) -> None:
        pids = [(i, self.pid(i)) for i in node_ids]
        for _i, pid in pids:  # all at once: a power cut hits every node in the same instant
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for i, pid in pids:
            if pid is not None:
                wait_gone(pid, 5.0)
            self.paused.discard(i)
            self.cdir.remove_pid(i)
        self.reap()

    def start(self, node_id: int) -> None:
        if self.pid(node_id) is not None:
            return
        child = spawn_node(self.cdir, node_id)
        self.children.append(child)
        self.pids.add(child.pid)

    def pause(self, node_id: int) -> None:
        pid = self.pid(node_id)
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
            self.paused.add(node_id)

    def resume_all(self) -> None:
        for node_id in list(self.paused):
            pid = self.pid(node_id)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            self.paused.discard(node_id)

    def faults(self, action: str, *groups: str) -> None:
        launcher_faults.apply(self.cdir, action, list(groups), seed=self.settings.seed)

    def reap(self) -> None:
        self.children = [c for c in self.children if c.poll() is None]

    def health(self, node_id: int) -> dict | None:
        try:
            with Client(self.url(node_id), timeout_s=PROBE_TIMEOUT_S) as c:
                return c.health()
        except Exception:  # a probe of a node that is down, paused or starting
            return None

    def leader(self) -> int | None:
        votes: dict[int, int] = {}
        for node_id in self.ids:
            if node_id in self.paused:
                continue
            h = self.health(node_id)
            if h and h.get("leader_id"):
                votes[h["leader_id"]] = votes.get(h["leader_id"], 0) + 1
        return max(votes, key=votes.get) if votes else None

    def teardown(self) -> None:
        """SIGKILL every node (the run is over and checked: no need for a graceful stop)."""
        self.resume_all()
        with contextlib.suppress(Exception):
            self.kill(self.ids)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(Exception):
                child.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def free_port_block(count: int, rng: random.Random) -> int:
    import socket

    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        ok = True
        for port in range(base, base + count):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError(f"no block of {count} free ports found")


# ---- clients -------------------------------------------------------------------------------------


def run_client(
    index: int, cluster: Cluster, rec: Recorder, keys: list[str], stop: threading.Event, seed: int
) -> None:
    rng = random.Random(seed * 1000 + index)
    clients = {i: Client(cluster.url(i), timeout_s=CLIENT_TIMEOUT_S) for i in cluster.ids}
    process = index
    written = 0
    try:
        while not stop.is_set():
            node = rng.choice(cluster.ids)
            key = rng.choice(keys)
            roll = rng.random()
            client = clients[node]
            if roll < GET_SHARE:
                op = rec.new_op(process=process, kind="get", key=key, node=node)
            elif roll < GET_SHARE + DELETE_SHARE:
                op = rec.new_op(process=process, kind="delete", key=key, node=node)
            else:
                written += 1
                value = f"c{index}-{written}"
                op = rec.new_op(process=process, kind="put", key=key, value=value, node=node)
            outcome, error = OK, None
            try:
                if op.kind == "get":
                    try:
                        op.seq, data = client.get_with_seq(key)
                        op.output = data.decode()
                    except KeyNotFoundError:
                        op.output = None
                elif op.kind == "put":
                    op.seq = client.put(key, op.value)["seq"]
                else:
                    op.seq = client.delete(key)["seq"]
            except NoLeaderError as exc:
                outcome, error = FAIL, str(exc)
            except NodeUnreachableError as exc:
                # Refused: the request never left; anything else may have reached the node.
                refused = "refused" in str(exc).lower()
                outcome = FAIL if refused or op.kind == "get" else UNKNOWN
                error = str(exc)
            except OutcomeUnknownError as exc:
                outcome, error = UNKNOWN, str(exc)
            except Exception as exc:  # any other answer: a write may have happened
                outcome, error = (
                    (FAIL if op.kind == "get" else UNKNOWN),
                    f"{type(exc).__name__}: {exc}",
                )
            ret = rec.now()
            with rec.lock:
                op.outcome, op.error = outcome, error
                op.ret = ret if outcome != UNKNOWN else math.inf
            if outcome == UNKNOWN:
                process += cluster.settings.clients  # a new process: the old one may be stuck
                clients[node].close()
            elif outcome == FAIL:
                stop.wait(FAIL_BACKOFF_S)
    finally:
        for c in clients.values():
            c.close()


def sample_heads(cluster: Cluster, rec: Recorder, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed + 17)
    while not stop.wait(HEAD_SAMPLE_INTERVAL_S):
        node = rng.choice(cluster.ids)
        if node in cluster.paused:
            continue
        try:
            with Client(cluster.url(node), timeout_s=PROBE_TIMEOUT_S) as c:
                head = c.tree_head(stale=True)
        except Exception:  # down, paused or electing: try another node next time
            continue
        if not head.verify():
            rec.event("bad tree head signature", node=node, tree_size=head.tree_size)
        with rec.lock:
            rec.heads.append(HeadSeen(node, head.tree_size, head.root, rec.now()))


# ---- nemeses -------------------------------------------------------------------------------------


class Nemesis:
    def __init__(self, name: str, cluster: Cluster, rec: Recorder, rng: random.Random) -> None:
        self.name = name
        self.cluster = cluster
        self.rec = rec
        self.rng = rng
        s = cluster.settings
        # Long enough for a new election to happen around the fault (randomised timeouts reach
        # twice the election timeout), short enough for several rounds in a short run.
        self.hold_s = max(3.0 * s.election_s, 1.5)
        self.quiet_s = max(2.0 * s.election_s, 1.0)

    def run(self, stop: threading.Event) -> None:
        stop.wait(self.quiet_s)
        while not stop.is_set():
            name = self.name
            if name == "mixed":
                name = self.rng.choice([n for n in NEMESES if n != "none"])
            if name != "none":
                try:
                    getattr(self, "_" + name.replace("-", "_"))(stop)
                finally:
                    self.heal()
                self._await_leader(stop)
            stop.wait(self.quiet_s * self.rng.uniform(1.0, 1.5))

    def _await_leader(self, stop: threading.Event) -> None:
        """After a heal, let the cluster elect a leader before the quiet time counts (restarted
        nodes need a second or two to start): otherwise the next fault lands before recovery."""
        deadline = time.monotonic() + RECOVERY_WAIT_S
        while not stop.is_set() and time.monotonic() < deadline:
            leader = self.cluster.leader()
            if leader is not None:
                self.rec.event("leader", node=leader)
                return
            stop.wait(0.1)
        if not stop.is_set():
            self.rec.event("no leader after the heal", seconds=RECOVERY_WAIT_S)

    def _hold(self, stop: threading.Event) -> None:
        stop.wait(self.hold_s * self.rng.uniform(1.0, 1.5))

    def _leader_or_random(self) -> int:
        return self.cluster.leader() or self.rng.choice(self.cluster.ids)

    def heal(self) -> None:
        c = self.cluster
        c.resume_all()
        c.faults("heal")
        for node_id in c.ids:
            if c.pid(node_id) is None:
                c.start(node_id)
                self.rec.event("start", node=node_id)
        c.reap()

    def _kill_follower(self, stop) -> None:
        leader = self._leader_or_random()
        victim = self.rng.choice([i for i in self.cluster.ids if i != leader])
        self.rec.event("kill -9 follower", node=victim)
        self.cluster.kill([victim])
        self._hold(stop)

    def _kill_leader(self, stop) -> None:
        victim = self._leader_or_random()
        self.rec.event("kill -9 leader", node=victim)
        self.cluster.kill([victim])
        self._hold(stop)

    def _pause(self, stop) -> None:
        c = self.cluster
        victim = self._leader_or_random() if self.rng.random() < 0.5 else self.rng.choice(c.ids)
        self.rec.event("SIGSTOP", node=victim)
        c.pause(victim)
        self._hold(stop)
        self.rec.event("SIGCONT", node=victim)
        c.resume_all()

    def _partition_majority(self, stop) -> None:
        ids = list(self.cluster.ids)
        self.rng.shuffle(ids)
        minority = ids[: len(ids) // 2]
        majority = ids[len(ids) // 2 :]
        self.rec.event("partition", groups=[sorted(majority), sorted(minority)])
        self.cluster.faults("partition", _group(majority), _group(minority))
        self._hold(stop)

    def _partition_leader(self, stop) -> None:
        leader = self._leader_or_random()
        self.rec.event("isolate leader", node=leader)
        self.cluster.faults("isolate", str(leader))
        self._hold(stop)

    def _bridge(self, stop) -> None:
        ids = list(self.cluster.ids)
        self.rng.shuffle(ids)
        middle = ids[0]
        rest = ids[1:]
        left, right = rest[: len(rest) // 2], rest[len(rest) // 2 :]
        self.rec.event("bridge", left=sorted(left), bridge=middle, right=sorted(right))
        self.cluster.faults("bridge", _group(left), str(middle), _group(right))
        self._hold(stop)

    def _crash_all(self, stop) -> None:
        self.rec.event("kill -9 every node")
        self.cluster.kill(list(self.cluster.ids))
        stop.wait(self.rng.uniform(0.2, 1.0))

    def _fsync(self, stop) -> None:
        c = self.cluster
        victim = self._leader_or_random() if self.rng.random() < 0.7 else self.rng.choice(c.ids)
        pid = c.pid(victim)
        self.rec.event("fsync fails", node=victim)
        c.faults("fsync-fail", str(victim))
        if pid is not None and wait_gone(pid, self.hold_s * 2):
            self.rec.event("stopped after the fsync failure", node=victim)
        c.kill([victim])  # if it never synced (no writes reached it), stop it all the same
        self._hold(stop)


def _group(ids: list[int]) -> str:
    return ",".join(str(i) for i in sorted(ids))


# ---- the run ------------------------------------------------------------------------------------


FINAL_KEY = "nemesis:final"  # written once after the run; not one of the clients' keys


def final_write(cluster: Cluster, deadline: float) -> int:
    """Commit one write after the run, through any node: once it is acknowledged, every entry
    of earlier terms is committed too (a leader commits them with its own). Its seq, or -1."""
    while time.monotonic() < deadline:
        for node_id in cluster.ids:
            with contextlib.suppress(Exception):
                with Client(cluster.url(node_id), timeout_s=CLIENT_TIMEOUT_S) as c:
                    return int(c.put(FINAL_KEY, "end of run")["seq"])
        time.sleep(0.2)
    return -1


def wait_converged(cluster: Cluster, rec: Recorder) -> tuple[int, int, bytes, list[str]]:
    """Commit a final write, then wait until every node serves the same tree head that holds it
    (nodes agreeing on an older head could all lack entries a new leader has not yet committed);
    returns (node, size, root, problems)."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    problems: list[str] = []
    final_seq = final_write(cluster, deadline)
    if final_seq < 0:
        problems.append(f"no write was acknowledged in {CONVERGE_TIMEOUT_S:g} s after the run")
    last: dict[int, tuple[int, bytes]] = {}
    while True:
        last = {}
        for node_id in cluster.ids:
            with contextlib.suppress(Exception):
                with Client(cluster.url(node_id), timeout_s=2) as c:
                    head = c.tree_head(stale=True)
                    last[node_id] = (head.tree_size, head.root)
                    with rec.lock:
                        rec.heads.append(HeadSeen(node_id, head.tree_size, head.root, rec.now()))
        if (
            len(last) == len(cluster.ids)
            and len(set(last.values())) == 1
            and next(iter(last.values()))[0] > final_seq
        ):
            break
        if time.monotonic() > deadline:
            problems.append(f"the nodes did not converge in {CONVERGE_TIMEOUT_S:g} s: {last}")
            break
        time.sleep(0.2)
    if not last:
        raise RuntimeError("no node answers after the run")
    node, (size, root) = max(last.items(), key=lambda item: item[1][0])
    return node, size, root, problems


def final_histories(cluster: Cluster, node: int, keys: list[str]) -> dict[str, list[FinalVersion]]:
    out = {}
    with Client(cluster.url(node), timeout_s=CLIENT_TIMEOUT_S) as c:
        for key in keys:
            for attempt in range(50):
                try:
                    versions = c.history(key)
                    break
                except (NoLeaderError, OutcomeUnknownError, NodeUnreachableError):
                    if attempt == 49:
                        raise
                    time.sleep(0.2)
            out[key] = [FinalVersion(v.seq, v.op, v.value.decode()) for v in versions]
    return out


def longest_write_gap(ops: list[Op], end: float) -> float:
    times = sorted(op.ret for op in ops if op.is_write and op.outcome == OK)
    edges = [0.0, *times, end]
    return max(b - a for a, b in zip(edges, edges[1:], strict=False))


def start_cluster(settings: Settings, workdir: Path, attempts: int = 3) -> tuple[int, Cluster]:
    """Start a cluster on a free block of ports; another process may take a port between the
    check and the bind, so a start that loses that race moves to a new block."""
    for attempt in range(attempts):
        port = free_port_block(2 * settings.nodes, random.Random())
        path = workdir / ("cluster" if attempt == 0 else f"cluster-{attempt}")
        cluster = Cluster(path, settings, port)
        try:
            cluster.up()
            return port, cluster
        except RuntimeError as exc:
            cluster.teardown()
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def run_once(settings: Settings, workdir: Path) -> dict:
    rng = random.Random(settings.seed)
    port, cluster = start_cluster(settings, workdir)
    keys = [f"k{i}" for i in range(settings.keys)]
    rec = Recorder(time.monotonic())
    stop_clients, stop_nemesis = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    summary: dict = {
        "nemesis": settings.nemesis,
        "seed": settings.seed,
        "history": str(settings.history),
    }
    try:
        rec.started = time.monotonic()
        rec.event("cluster up", port=port)
        for i in range(settings.clients):
            threads.append(
                threading.Thread(
                    target=run_client,
                    args=(i, cluster, rec, keys, stop_clients, settings.seed),
                    name=f"client-{i}",
                    daemon=True,
                )
            )
        threads.append(
            threading.Thread(
                target=sample_heads, args=(cluster, rec, stop_clients, settings.seed), daemon=True
            )
        )
        nemesis = Nemesis(settings.nemesis, cluster, rec, rng)
        nemesis_thread = threading.Thread(target=nemesis.run, args=(stop_nemesis,), daemon=True)
        for t in threads:
            t.start()
        nemesis_thread.start()
        _progress(settings, rec)
        stop_nemesis.set()
        nemesis_thread.join(timeout=60)
        nemesis.heal()
        rec.event("healed")
        # The clients keep going while the cluster recovers: the tail of the run shows recovery.
        time.sleep(min(3.0, settings.duration_s / 8))
        stop_clients.set()
        for t in threads:
            t.join(timeout=CLIENT_TIMEOUT_S + 5)
        run_end = rec.now()
        rec.event("clients stopped")
        node, size, root, problems = wait_converged(cluster, rec)
        final = final_histories(cluster, node, keys)

        def consistency(first: int, second: int) -> list[bytes]:
            with Client(cluster.url(node), timeout_s=CLIENT_TIMEOUT_S) as c:
                return c.consistency(first, second, stale=True)

        with rec.lock:
            ops = list(rec.ops)
        for op in ops:  # still in flight when its client stopped: never answered
            if op.outcome == UNKNOWN and op.error is None:
                op.error = "no answer before the run ended"
        HistoryFile(
            ops,
            heads=[
                {
                    "node": h.node,
                    "tree_size": h.tree_size,
                    "root": h.root.hex(),
                    "t": round(h.at, 3),
                }
                for h in rec.heads
            ],
            events=rec.events,
            meta={
                "nemesis": settings.nemesis,
                "seed": settings.seed,
                "nodes": settings.nodes,
                "clients": settings.clients,
                "duration_s": settings.duration_s,
                "tick_ms": settings.tick_ms,
            },
        ).save(settings.history)
        lin = check_linearizable(ops, timeout_s=settings.check_timeout_s)
        ledger = check_ledger(ops, final, rec.heads, (size, root), consistency)
        bad_signatures = [e for e in rec.events if e["event"] == "bad tree head signature"]
        counts = {k: sum(1 for op in ops if op.outcome == k) for k in (OK, FAIL, UNKNOWN)}
        verdict = PASS
        # A node that never comes back (or never catches up) after the heal fails the run too.
        if lin.verdict == VIOLATION or not ledger.ok or bad_signatures or problems:
            verdict = VIOLATION
        elif lin.verdict == TIMED_OUT:
            verdict = TIMED_OUT
        summary.update(
            verdict=verdict,
            ops=len(ops),
            outcomes=counts,
            availability=round(counts[OK] / len(ops), 4) if ops else 0.0,
            longest_write_gap_s=round(longest_write_gap(ops, run_end), 3),
            linearizability=lin.verdict,
            violations=[
                {"key": k.key, "stuck_op": k.stuck_op, "deepest": k.deepest} for k in lin.violations
            ],
            check_seconds=round(lin.seconds, 3),
            ops_checked=lin.ops_checked,
            checked_ops_per_second=round(len(ops) / lin.seconds) if lin.seconds > 0 else None,
            ledger=ledger.summary(),
            ledger_details={
                name: getattr(ledger, name)[:5]
                for name in ledger.summary()
                if name != "heads_checked" and getattr(ledger, name)
            },
            bad_signatures=len(bad_signatures),
            final_tree_size=size,
            convergence_problems=problems,
            events=rec.events,
        )
        return summary
    finally:
        stop_nemesis.set()
        stop_clients.set()
        cluster.teardown()


def _progress(settings: Settings, rec: Recorder) -> None:
    end = rec.started + settings.duration_s
    bar = None
    if settings.progress:
        from tqdm import tqdm

        bar = tqdm(total=round(settings.duration_s), unit="s", desc=settings.nemesis, leave=False)
    shown = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(0.5, end - now))
        if bar is not None:
            elapsed = min(round(time.monotonic() - rec.started), bar.total)
            bar.update(elapsed - shown)
            shown = elapsed
            bar.set_postfix(rec.counts(), refresh=False)
    if bar is not None:
        bar.close()


def print_summary(s: dict) -> None:
    out = s.get("outcomes", {})
    print(f"nemesis {s['nemesis']}: {s.get('verdict', 'error').upper()}  (seed {s['seed']})")
    print(
        f"  ops {s.get('ops', 0)}: ok {out.get(OK, 0)}, fail {out.get(FAIL, 0)}, unknown "
        f"{out.get(UNKNOWN, 0)}; availability {s.get('availability', 0):.1%}; longest gap "
        f"without an acknowledged write {s.get('longest_write_gap_s', 0):.2f} s"
    )
    print(
        f"  linearizability: {s.get('linearizability')} ({s.get('ops_checked')} ops searched in "
        f"{s.get('check_seconds')} s); violations: {len(s.get('violations', []))}"
    )
    ledger = s.get("ledger", {})
    print("  ledger: " + ", ".join(f"{k} {v}" for k, v in ledger.items()))
    for name, lines in s.get("ledger_details", {}).items():
        for line in lines:
            print(f"    {name}: {line}")
    for problem in s.get("convergence_problems", []):
        print(f"  warning: {problem}")
    print(f"  history: {s['history']}")
    if s.get("cluster_dir"):
        print(f"  cluster directory (node logs): {s['cluster_dir']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nemesis", choices=CHOICES, default="mixed")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of faults per nemesis"
    )
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--keys", type=int, default=4, help="keys the clients share")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, help="default: random (printed)")
    parser.add_argument("--tick-ms", type=int, default=100)
    parser.add_argument("--election-timeout", type=int, default=10, help="ticks")
    parser.add_argument(
        "--check-timeout", type=float, default=120.0, help="seconds for the checker"
    )
    parser.add_argument("--out", help="directory for history files (default: a new temp dir)")
    parser.add_argument("--report", help="also write the summary (a JSON list) here")
    parser.add_argument("--keep", action="store_true", help="keep the cluster directory")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.keys < 1 or not 3 <= args.nodes <= 7:
        parser.error("need --duration > 0, --clients >= 1, --keys >= 1 and 3 <= --nodes <= 7")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="scribe-nemesis-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in NEMESES if n != "none"] if args.nemesis == "all" else [args.nemesis]
    summaries = []
    for name in names:
        settings = Settings(
            nemesis=name,
            duration_s=args.duration,
            clients=args.clients,
            keys=args.keys,
            nodes=args.nodes,
            seed=seed,
            tick_ms=args.tick_ms,
            election_ticks=args.election_timeout,
            check_timeout_s=args.check_timeout,
            history=out_dir / f"history-{name}-{seed}.json",
            progress=not args.no_progress and sys.stderr.isatty(),
        )
        workdir = Path(tempfile.mkdtemp(prefix=f"nemesis-{name}-", dir=out_dir))
        summary = None
        try:
            summary = run_once(settings, workdir)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"nemesis {name}: the run could not complete: {exc}", file=sys.stderr)
            print(f"  the cluster's logs are in {workdir}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            # A run that did not pass keeps its cluster directory: the node logs tell why.
            if not args.keep and summary is not None and summary["verdict"] == PASS:
                shutil.rmtree(workdir, ignore_errors=True)
            elif summary is not None:
                summary["cluster_dir"] = str(workdir)
        print_summary(summary)
        summaries.append(summary)
        sys.stdout.flush()
    if args.report:
        Path(args.report).write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    verdicts = {s["verdict"] for s in summaries}
    if VIOLATION in verdicts:
        return EXIT_FAIL
    if TIMED_OUT in verdicts:
        return EXIT_UNKNOWN
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main())
