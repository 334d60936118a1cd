"""Conformance suite: every transport kind must pass every test here.

In-process tests run several Transport objects in one uvloop loop (for tcp,
ipc and shm they still go through real sockets and shared memory). Tests
marked "processes" run each node in its own OS process (transport_peer.py)
and SIGKILL them to check restarts.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

import pytest
import uvloop

import transports
from transports import FaultFilter, PeerAddress, TransportLimits
from transports.naming import shm_name_prefix

KINDS = ["memory", "tcp", "ipc", "shm"]
PROCESS_KINDS = ["tcp", "ipc", "shm"]
MIB = 1024 * 1024
PEER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transport_peer.py")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_spec = importlib.util.spec_from_file_location("scribe_transport_peer", PEER_SCRIPT)
peer_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peer_script)
make_frame = peer_script.make_frame

pytestmark = pytest.mark.timeout(60)


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def peer_table(count: int) -> dict[int, PeerAddress]:
    return {i + 1: PeerAddress("127.0.0.1", p) for i, p in enumerate(free_ports(count))}


def run(coro, timeout_s: float = 30.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout_s)

    return uvloop.run(bounded())


def leftovers(run_dir: str) -> list[str]:
    """Shared-memory segments and socket files a closed cluster should not leave."""
    found = glob.glob(os.path.join("/dev/shm", shm_name_prefix(run_dir) + "*"))
    found += glob.glob(os.path.join(run_dir, "*.sock"))
    return found


async def recv_within(t: transports.Transport, timeout_s: float = 5.0) -> tuple[int, bytes]:
    return await asyncio.wait_for(t.recv(), timeout_s)


async def nothing_within(t: transports.Transport, timeout_s: float = 0.2) -> None:
    try:
        got = await asyncio.wait_for(t.recv(), timeout_s)
    except TimeoutError:
        return
    raise AssertionError(f"expected no frame, got {got[0]}:{got[1][:16]!r}")


async def send_until_delivered(
    sender: transports.Transport, receiver: transports.Transport, timeout_s: float = 5.0
) -> None:
    """Probe a link until a probe arrives; drain the probes (links come up lazily)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sender.send(receiver.node_id, b"probe")
        try:
            from_id, frame = await asyncio.wait_for(receiver.recv(), 0.05)
        except TimeoutError:
            continue
        assert (from_id, frame) == (sender.node_id, b"probe")
        while True:
            try:
                from_id, frame = await asyncio.wait_for(receiver.recv(), 0.05)
            except TimeoutError:
                return
            assert (from_id, frame) == (sender.node_id, b"probe")
    raise AssertionError(f"link {sender.node_id}->{receiver.node_id} never came up")


async def started(kind, peers, run_dir, ids=None, limits=None):
    nodes = {}
    for node_id in ids or peers:
        t = transports.create(kind, node_id, peers, run_dir=str(run_dir), limits=limits)
        await t.start()
        nodes[node_id] = t
    return nodes


async def close_all(nodes) -> None:
    for t in nodes.values():
        await t.close()


# --------------------------------------------------------------------------------------
# In-process conformance
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_three_nodes_exchange_in_order_with_sender_ids_and_sizes(kind, tmp_path):
    peers = peer_table(3)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        try:
            for a in nodes:
                for b in nodes:
                    if a != b:
                        await send_until_delivered(nodes[a], nodes[b])
            sizes = [0, 1, MIB] + [100] * 200
            for a in nodes:
                for b in nodes:
                    if a != b:
                        for i, size in enumerate(sizes):
                            assert nodes[a].send(b, make_frame(a, b, i, size)) is True
            for b, t in nodes.items():
                got: dict[int, list[bytes]] = {a: [] for a in nodes if a != b}
                for _ in range(len(sizes) * 2):
                    from_id, frame = await recv_within(t)
                    got[from_id].append(frame)
                for a, frames in got.items():
                    assert frames == [make_frame(a, b, i, s) for i, s in enumerate(sizes)]
                await nothing_within(t, 0.05)
        finally:
            await close_all(nodes)

    run(scenario())
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_flush_keeps_order_and_is_safe_at_any_time(kind, tmp_path):
    # What flush() makes faster (a wake-up before the sender blocks) is checked per transport
    # (test_shm_rings); here: it never loses, duplicates or reorders, and never raises.
    peers = peer_table(2)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        try:
            nodes[1].flush()  # nothing sent yet
            await send_until_delivered(nodes[1], nodes[2])
            for i in range(50):
                assert nodes[1].send(2, make_frame(1, 2, i, 100))
                if i % 7 == 0:
                    nodes[1].flush()
            nodes[1].flush()
            nodes[1].flush()
            for i in range(50):
                assert await recv_within(nodes[2]) == (1, make_frame(1, 2, i, 100))
            await nothing_within(nodes[2], 0.05)
        finally:
            await close_all(nodes)
        nodes[1].flush()  # after close: nothing to do, no error

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_send_to_peer_not_up_returns_false_without_blocking(kind, tmp_path):
    peers = peer_table(2)

    async def scenario():
        nodes = await started(kind, peers, tmp_path, ids=[1])
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        try:
            await asyncio.sleep(0.01)
            results = []
            for _ in range(20):
                begin = time.monotonic()
                for _ in range(100):
                    results.append(nodes[1].send(2, b"x" * 1000))
                # 100 sends must not stall the loop (generous bound: no speed assertion).
                assert time.monotonic() - begin < 1.0
                await asyncio.sleep(0.005)
            assert not any(results)
            assert ticks >= 10  # the loop kept running other tasks meanwhile
            assert nodes[1].stats.dropped_queue_full == len(results)
        finally:
            stop = True
            await task
            await close_all(nodes)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_peer_that_starts_late_gets_later_messages(kind, tmp_path):
    peers = peer_table(2)

    async def scenario():
        nodes = await started(kind, peers, tmp_path, ids=[1])
        assert nodes[1].send(2, b"early") is False
        nodes.update(await started(kind, peers, tmp_path, ids=[2]))
        try:
            await send_until_delivered(nodes[1], nodes[2])
            await send_until_delivered(nodes[2], nodes[1])
            for i in range(50):
                assert nodes[1].send(2, b"late-%d" % i)
            for i in range(50):
                assert await recv_within(nodes[2]) == (1, b"late-%d" % i)
        finally:
            await close_all(nodes)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_restart_of_receiver_and_of_sender_then_traffic_resumes(kind, tmp_path):
    peers = peer_table(2)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        try:
            await send_until_delivered(nodes[1], nodes[2])
            for restarted in (2, 1):  # the receiver first, then the sender
                nodes[1].send(2, b"probe")  # in flight during the restart: may be lost
                await nodes[restarted].close()
                del nodes[restarted]
                nodes.update(await started(kind, peers, tmp_path, ids=[restarted]))
                await send_until_delivered(nodes[1], nodes[2])
                for i in range(100):
                    assert nodes[1].send(2, b"after-%d" % i)
                for i in range(100):
                    assert await recv_within(nodes[2]) == (1, b"after-%d" % i)
                await send_until_delivered(nodes[2], nodes[1])
        finally:
            await close_all(nodes)

    run(scenario())
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_frame_over_the_limit_is_refused(kind, tmp_path):
    peers = peer_table(2)
    limits = TransportLimits(frame_bytes_max=64 * 1024, shm_ring_bytes=64 * 1024)

    async def scenario():
        nodes = await started(kind, peers, tmp_path, limits=limits)
        try:
            await send_until_delivered(nodes[1], nodes[2])
            assert nodes[1].send(2, b"y" * (64 * 1024 + 1)) is False
            assert nodes[1].stats.dropped_oversize == 1
            at_limit = bytes(range(256)) * 256  # exactly frame_bytes_max, > the shm ring
            assert nodes[1].send(2, at_limit) is True
            assert await recv_within(nodes[2]) == (1, at_limit)
            await nothing_within(nodes[2], 0.05)
        finally:
            await close_all(nodes)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_close_is_idempotent_wakes_receivers_and_releases_resources(kind, tmp_path):
    peers = peer_table(3)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        await send_until_delivered(nodes[1], nodes[2])
        await send_until_delivered(nodes[2], nodes[1])
        waiting = asyncio.create_task(nodes[3].recv())
        await asyncio.sleep(0.01)
        for t in nodes.values():
            await t.close()
            await t.close()
            assert t.closed
            assert t.send(1 if t.node_id != 1 else 2, b"after close") is False
            with pytest.raises(transports.TransportClosedError):
                await t.recv()
        with pytest.raises(transports.TransportClosedError):
            await asyncio.wait_for(waiting, 2)
        with pytest.raises(transports.TransportStateError):
            await nodes[1].start()
        # The same node can come back on the same address and names at once.
        again = await started(kind, peers, tmp_path, ids=[1, 2])
        try:
            await send_until_delivered(again[1], again[2])
        finally:
            await close_all(again)

    run(scenario())
    assert leftovers(str(tmp_path)) == []
    if kind == "tcp":
        for address in peers.values():  # every port is free again
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address.host, address.raft_port))


@pytest.mark.parametrize("kind", KINDS)
def test_fault_filter_drops_as_configured_and_is_switchable(kind, tmp_path):
    peers = peer_table(3)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        try:
            for a, b in ((1, 2), (3, 2), (2, 1)):
                await send_until_delivered(nodes[a], nodes[b])
            assert all(t.faults is None for t in nodes.values())  # absent by default

            # Isolate on the send side: frames to 2 vanish, frames to others pass.
            nodes[1].faults = FaultFilter(seed=1)
            nodes[1].faults.isolate([2])
            assert nodes[1].send(2, b"lost") is True  # lost "on the wire"
            nodes[3].send(2, b"from-3")
            assert await recv_within(nodes[2]) == (3, b"from-3")
            await nothing_within(nodes[2], 0.1)
            assert nodes[1].faults.dropped_send == 1

            # Isolate on the receive side: 2 ignores 3 but still hears 1 once healed.
            nodes[1].faults.heal()
            nodes[2].faults = FaultFilter()
            nodes[2].faults.isolate([3])
            nodes[3].send(2, b"ignored")
            nodes[1].send(2, b"heard")
            assert await recv_within(nodes[2]) == (1, b"heard")
            await nothing_within(nodes[2], 0.1)
            assert nodes[2].faults.dropped_recv == 1

            # Switched off at run time: everything passes again.
            nodes[2].faults.enabled = False
            nodes[3].send(2, b"back")
            assert await recv_within(nodes[2]) == (3, b"back")

            # Seeded random drops: the same seed drops the same frames.
            probability, seed, count = 0.5, 42, 200
            nodes[1].faults = FaultFilter(seed=0)
            nodes[1].faults.set_drop_probability(probability, seed=seed)
            for i in range(count):
                nodes[1].send(2, b"r%d" % i)
            nodes[1].faults = None
            nodes[1].send(2, b"end")
            received = []
            while True:
                _, frame = await recv_within(nodes[2])
                if frame == b"end":
                    break
                received.append(frame)
            rng = random.Random(seed)
            expected = [b"r%d" % i for i in range(count) if not rng.random() < probability]
            assert received == expected
            assert 0 < len(received) < count
        finally:
            await close_all(nodes)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_queue_towards_a_peer_that_does_not_read_is_bounded(kind, tmp_path):
    peers = peer_table(2)
    limits = TransportLimits(
        send_queue_frames_max=8, recv_queue_frames_max=8, shm_ring_bytes=256 * 1024
    )

    async def scenario():
        nodes = await started(kind, peers, tmp_path, limits=limits)
        try:
            await send_until_delivered(nodes[1], nodes[2])
            frame = b"z" * (64 * 1024)
            accepted = 0
            for _ in range(2000):
                if not nodes[1].send(2, frame):
                    break
                accepted += 1
                if accepted % 16 == 0:
                    await asyncio.sleep(0.002)  # let the I/O threads move what they can
            assert accepted < 2000, "the queue to a non-reading peer grew without bound"
            # What was accepted is delivered in order once the peer reads.
            for _ in range(accepted):
                assert await recv_within(nodes[2]) == (1, frame)
        finally:
            await close_all(nodes)

    run(scenario())


@pytest.mark.parametrize("kind", KINDS)
def test_start_receiving_delivers_queued_and_later_frames_in_order_until_close(kind, tmp_path):
    """The callback path a node uses: frames sent before it starts (an edge-triggered
    descriptor would not fire for them), bursts far over one read's worth, both peers, the
    receive-side fault filter; nothing delivered after close()."""
    peers = peer_table(3)

    async def scenario():
        nodes = await started(kind, peers, tmp_path)
        try:
            for a in (1, 3):
                await send_until_delivered(nodes[a], nodes[2])
            other = tmp_path / "other"
            other.mkdir()
            unstarted = transports.create(kind, 1, peer_table(2), run_dir=str(other))
            with pytest.raises(transports.TransportStateError):
                unstarted.start_receiving(print)
            count = 1000
            for i in range(count):
                assert nodes[1].send(2, b"early%d" % i)
            await asyncio.sleep(0.2)  # queued at the receiver before anyone takes them
            got: dict[int, list[bytes]] = {1: [], 3: []}
            done = asyncio.Event()
            expected_total = 2 * count + 1

            def deliver(from_id: int, frame: bytes) -> None:
                got[from_id].append(frame)
                if sum(map(len, got.values())) >= expected_total:
                    done.set()

            nodes[2].start_receiving(deliver)
            with pytest.raises(transports.TransportStateError):
                nodes[2].start_receiving(deliver)
            for i in range(count):
                assert nodes[3].send(2, b"late%d" % i)
            deadline = time.monotonic() + 10
            while len(got[1]) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            nodes[2].faults = FaultFilter()
            nodes[2].faults.isolate([1])
            nodes[1].send(2, b"dropped by the receiver's filter")
            await asyncio.sleep(0.1)
            nodes[2].faults = None
            nodes[1].send(2, b"last")
            await asyncio.wait_for(done.wait(), 10)
            assert got[1] == [b"early%d" % i for i in range(count)] + [b"last"]
            assert got[3] == [b"late%d" % i for i in range(count)]
            assert nodes[2].stats.frames_received >= expected_total
            await nodes[2].close()
            nodes[1].send(2, b"after close")
            await asyncio.sleep(0.1)
            assert got[1][-1] == b"last"
        finally:
            await close_all(nodes)

    run(scenario())
    assert leftovers(str(tmp_path)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_misuse_raises_typed_errors(kind, tmp_path):
    peers = peer_table(2)
    t = transports.create(kind, 1, peers, run_dir=str(tmp_path))
    with pytest.raises(transports.TransportStateError):
        t.send(2, b"before start")

    async def scenario():
        await t.start()
        try:
            with pytest.raises(transports.TransportConfigError):
                t.send(9, b"unknown peer")
            with pytest.raises(TypeError):
                t.send(2, "text is not a frame")
        finally:
            await t.close()

    run(scenario())


def test_factory_rejects_bad_arguments(tmp_path):
    peers = peer_table(2)
    with pytest.raises(transports.TransportConfigError, match="unknown transport kind"):
        transports.create("udp", 1, peers, run_dir=str(tmp_path))
    with pytest.raises(transports.TransportConfigError, match="node_id"):
        transports.create("memory", 0, peers, run_dir=str(tmp_path))
    with pytest.raises(transports.TransportConfigError, match="no address"):
        transports.create("tcp", 3, peers, run_dir=str(tmp_path))
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    with pytest.raises(transports.TransportConfigError, match="longer than"):
        transports.create("ipc", 1, peers, run_dir=str(deep))
    with pytest.raises(transports.TransportConfigError, match="raft_port"):
        PeerAddress("127.0.0.1", 70000)
    with pytest.raises(transports.TransportConfigError, match="shm_ring_bytes"):
        TransportLimits(shm_ring_bytes=1000)


# --------------------------------------------------------------------------------------
# Separate processes
# --------------------------------------------------------------------------------------


class PeerProcess:
    """A transport_peer.py child: commands on stdin, events parsed from stdout."""

    def __init__(self, kind: str, node_id: int, peers: dict[int, PeerAddress], run_dir, log_dir):
        table = json.dumps({i: [a.host, a.raft_port] for i, a in peers.items()})
        self.node_id = node_id
        self.stderr = open(os.path.join(log_dir, f"node{node_id}-{time.monotonic_ns()}.err"), "wb")
        env = dict(os.environ, PYTHONPATH=REPO_ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, PEER_SCRIPT, kind, str(node_id), table, str(run_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=env,
        )
        self.events: queue.Queue = queue.Queue()
        self.received: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put(json.loads(line))
        self.events.put({"ev": "eof"})

    def command(self, **command) -> None:
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def wait_event(self, ev: str, timeout_s: float = 10.0) -> dict:
        """The next event named ev; frames received meanwhile are kept in self.received."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = self.events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"node {self.node_id}: no {ev!r} within {timeout_s}s"
                ) from None
            if event["ev"] == "recv":
                self.received.append(event)
            if event["ev"] == ev:
                return event
            if event["ev"] == "eof":
                raise AssertionError(f"node {self.node_id} exited: see {self.stderr.name}")

    def drain(self, timeout_s: float = 0.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                event = self.events.get(timeout=max(deadline - time.monotonic(), 0.0) or 0.0001)
            except queue.Empty:
                return
            if event["ev"] == "recv":
                self.received.append(event)

    def send(self, to: int, tag: int, sizes: list[int], retry_ms: int = 3000) -> list[bool]:
        self.command(op="send", to=to, tag=tag, sizes=sizes, retry_ms=retry_ms)
        return self.wait_event("sent")["ok"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.release()

    def close(self) -> None:
        self.command(op="close")
        self.wait_event("closed")
        assert self.proc.wait(5) == 0
        self.release()

    def release(self) -> None:
        """Close our ends of the pipes once the process is gone."""
        self._reader.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            if not stream.closed:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass  # unflushed input for a dead process


@pytest.fixture
def spawn(tmp_path):
    """Starts PeerProcesses; kills every one of them by PID at the end, even on failure."""
    started: list[PeerProcess] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def start(kind, node_id, peers) -> PeerProcess:
        p = PeerProcess(kind, node_id, peers, run_dir, log_dir)
        started.append(p)
        return p

    start.run_dir = str(run_dir)
    yield start
    for p in started:
        if p.proc.poll() is None:
            os.kill(p.proc.pid, signal.SIGKILL)
            p.proc.wait(5)
        p.release()
    transports.shm_cleanup(str(run_dir))  # segments of SIGKILLed nodes


def connect(sender: PeerProcess, receiver: PeerProcess, timeout_s: float = 10.0) -> None:
    """Probe sender -> receiver (tag 0) until a probe arrives, then forget the probes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sender.send(receiver.node_id, tag=0, sizes=[16], retry_ms=0)
        receiver.drain(0.05)
        if any(e["from"] == sender.node_id and e.get("tag") == 0 for e in receiver.received):
            receiver.drain(0.05)
            receiver.received = [e for e in receiver.received if e.get("tag") != 0]
            return
    raise AssertionError(f"link {sender.node_id}->{receiver.node_id} never came up")


def expect_frames(receiver: PeerProcess, sender_id: int, tag: int, sizes: list[int]) -> None:
    deadline = time.monotonic() + 10
    while True:
        # Frames under 12 bytes carry no tag: they match by position in the link's order.
        got = [e for e in receiver.received if e["from"] == sender_id and e.get("tag", tag) == tag]
        got = got[: len(sizes)]
        if len(got) >= len(sizes) or time.monotonic() > deadline:
            break
        receiver.drain(0.05)
    expected = [make_frame(sender_id, tag, i, s) for i, s in enumerate(sizes)]
    assert [(e["len"], e["crc"]) for e in got] == [(len(f), zlib.crc32(f)) for f in expected]
    for e in got:  # the sender id the transport reports is the one inside the frame
        assert e.get("src", sender_id) == sender_id
    taken = {id(e) for e in got}
    receiver.received = [e for e in receiver.received if id(e) not in taken]


@pytest.mark.parametrize("kind", PROCESS_KINDS)
def test_processes_three_nodes_exchange_both_ways(kind, spawn):
    peers = peer_table(3)
    nodes = {i: spawn(kind, i, peers) for i in peers}
    for p in nodes.values():
        p.wait_event("ready")
    for a in nodes:
        for b in nodes:
            if a != b:
                connect(nodes[a], nodes[b])
    # Small frames first (one tag), then 0 B, 1 B and 1 MiB frames (another tag, no
    # header in the tiny ones, so they are matched by length and CRC in order).
    small = [64] * 300
    odd = [0, 1, MIB, 12, MIB]
    for a in nodes:
        for b in nodes:
            if a != b:
                assert all(nodes[a].send(b, tag=10 + a, sizes=small))
                assert all(nodes[a].send(b, tag=20 + a, sizes=odd))
    for b in nodes:
        for a in nodes:
            if a != b:
                expect_frames(nodes[b], a, 10 + a, small)
                expect_frames(nodes[b], a, 20 + a, odd)
        assert nodes[b].received == []
    for p in nodes.values():
        p.close()
    assert leftovers(spawn.run_dir) == []


@pytest.mark.parametrize("kind", PROCESS_KINDS)
def test_processes_sigkill_and_restart_of_receiver_then_sender(kind, spawn):
    peers = peer_table(2)
    nodes = {i: spawn(kind, i, peers) for i in peers}
    for p in nodes.values():
        p.wait_event("ready")
    connect(nodes[1], nodes[2])
    burst = [100] * 50 + [300 * 1024]
    for round_number, victim in enumerate((2, 1, 2)):  # receiver, sender, receiver again
        tag = 100 + round_number
        nodes[victim].kill()
        # The survivor keeps sending while the victim is down: never blocks.
        survivor = nodes[3 - victim]
        survivor.send(victim, tag=99, sizes=[100] * 20, retry_ms=0)
        nodes[victim] = spawn(kind, victim, peers)
        nodes[victim].wait_event("ready")
        connect(nodes[1], nodes[2])
        connect(nodes[2], nodes[1])
        nodes[2].received.clear()
        assert all(nodes[1].send(2, tag=tag, sizes=burst))
        expect_frames(nodes[2], 1, tag, burst)
        assert all(nodes[2].send(1, tag=tag, sizes=burst))
        expect_frames(nodes[1], 2, tag, burst)
    for p in nodes.values():
        p.close()
    assert leftovers(spawn.run_dir) == []
