#!/usr/bin/env python3
"""Benchmark the node-to-node transports between two processes.

For each transport kind: ping-pong round-trip latency (p50/p99, microseconds)
with 100-byte frames, and one-way throughput (frames/s and MB/s) with 100-byte
and 64 KiB frames. Both ends receive as a node does (Transport.start_receiving)
and answer from the receive callback. Node 1 runs in this process, node 2 in a child process
(the "memory" kind runs both in this process: it has no other mode).

    python tools/bench_transport.py
    python tools/bench_transport.py --kinds shm,tcp --pings 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import uvloop  # noqa: E402

import transports  # noqa: E402
from transports import PeerAddress  # noqa: E402

PING, DATA, END, DONE, PROBE = b"P", b"T", b"E", b"D", b"?"
SMALL_FRAME_BYTES = 100
LARGE_FRAME_BYTES = 64 * 1024


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def send_blocking(t: transports.Transport, to_id: int, frame: bytes) -> None:
    """Send, yielding to the loop while the peer's queue is full."""
    while not t.send(to_id, frame):
        await asyncio.sleep(0)


class Receiver:
    """Receives the way a node does (Transport.start_receiving: frames handed over in the
    transport's own callback, no task switch per frame). `handler` takes each frame; while it is
    None, frames queue for `next()`."""

    def __init__(self, t: transports.Transport) -> None:
        self.t = t
        self.handler = None
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        t.start_receiving(self._deliver)

    def _deliver(self, from_id: int, frame: bytes) -> None:
        if self.handler is not None:
            self.handler(from_id, frame)
        else:
            self.queue.put_nowait((from_id, frame))

    async def next(self, timeout_s: float) -> tuple[int, bytes]:
        return await asyncio.wait_for(self.queue.get(), timeout_s)


class Sender:
    """Sends from a callback without blocking: frames a full queue refuses wait, in order."""

    def __init__(self, t: transports.Transport) -> None:
        self.t = t
        self.backlog: list[tuple[int, bytes]] = []

    def send(self, to_id: int, frame: bytes) -> None:
        if self.backlog or not self.t.send(to_id, frame):
            self.backlog.append((to_id, frame))
            if len(self.backlog) == 1:
                asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self.backlog:
            to_id, frame = self.backlog[0]
            await send_blocking(self.t, to_id, frame)
            self.backlog.pop(0)


def serve_echo(t: transports.Transport) -> None:
    """Node 2: echo pings, count data frames, answer an end marker with the count."""
    sender = Sender(t)
    received = 0

    def on_frame(from_id: int, frame: bytes) -> None:
        nonlocal received
        kind = frame[:1]
        if kind == DATA:
            received += 1
        elif kind == PING or kind == PROBE:
            sender.send(from_id, frame)
        elif kind == END:
            sender.send(from_id, DONE + str(received).encode())
            received = 0

    t.start_receiving(on_frame)


async def child_main(kind: str, run_dir: str, peers_json: str) -> None:
    peers = {int(k): PeerAddress(h, p) for k, (h, p) in json.loads(peers_json).items()}
    t = transports.create(kind, 2, peers, run_dir=run_dir)
    await t.start()
    serve_echo(t)
    # SIGTERM closes the transport (unlinking its rings) and ends the child.
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    async def stop() -> None:
        await t.close()
        stopped.set()

    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(stop()))
    await stopped.wait()


async def connect(t: transports.Transport, receiver: Receiver) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        t.send(2, PROBE)
        try:
            _, frame = await receiver.next(0.1)
        except TimeoutError:
            continue
        if frame == PROBE:
            while True:  # drain echoes of earlier probes
                try:
                    await receiver.next(0.1)
                except TimeoutError:
                    return
    raise RuntimeError("the link to the child node never came up")


async def ping_pong(t: transports.Transport, receiver: Receiver, count: int) -> tuple[float, float]:
    """Each echo is answered by the next ping from the receive callback, as a node answers."""
    frame = PING + bytes(SMALL_FRAME_BYTES - 1)
    rtts_us: list[float] = []
    done = asyncio.get_running_loop().create_future()
    sent_at = 0

    def on_frame(_from_id: int, reply: bytes) -> None:
        nonlocal sent_at
        rtts_us.append((time.perf_counter_ns() - sent_at) / 1000)
        if reply[:1] != PING:
            done.set_exception(RuntimeError(f"unexpected reply {reply[:8]!r}"))
        elif len(rtts_us) == count:
            done.set_result(None)
        else:
            sent_at = time.perf_counter_ns()
            if not t.send(2, frame):
                done.set_exception(RuntimeError("the transport refused a ping"))

    receiver.handler = on_frame
    try:
        sent_at = time.perf_counter_ns()
        await send_blocking(t, 2, frame)
        await done
    finally:
        receiver.handler = None
    cuts = statistics.quantiles(rtts_us, n=100)
    return statistics.median(rtts_us), cuts[98]


async def one_way(
    t: transports.Transport, receiver: Receiver, count: int, frame_bytes: int
) -> tuple[float, float]:
    frame = DATA + bytes(frame_bytes - 1)
    begin = time.perf_counter()
    for i in range(count):
        await send_blocking(t, 2, frame)
        if i % 64 == 63:
            await asyncio.sleep(0)  # let the transport's callbacks (pokes, I/O) run
    await send_blocking(t, 2, END)
    _, reply = await receiver.next(60)
    elapsed_s = time.perf_counter() - begin
    if reply[:1] != DONE or int(reply[1:]) != count:
        raise RuntimeError(f"node 2 counted {reply[1:]!r} frames, {count} were sent")
    return count / elapsed_s, count * frame_bytes / elapsed_s / 1e6


async def bench_kind(kind: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as run_dir:
        peers = {i + 1: PeerAddress("127.0.0.1", p) for i, p in enumerate(free_ports(2))}
        child = None
        echo = None
        if kind == "memory":
            echo = transports.create(kind, 2, peers, run_dir=run_dir)
            await echo.start()
            serve_echo(echo)
        else:
            table = json.dumps({i: [a.host, a.raft_port] for i, a in peers.items()})
            child = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--child", kind, run_dir, table]
            )
        t = transports.create(kind, 1, peers, run_dir=run_dir)
        await t.start()
        try:
            receiver = Receiver(t)
            await connect(t, receiver)
            p50_us, p99_us = await ping_pong(t, receiver, args.pings)
            small = await one_way(t, receiver, args.small_frames, SMALL_FRAME_BYTES)
            large = await one_way(t, receiver, args.large_frames, LARGE_FRAME_BYTES)
        finally:
            await t.close()
            if child is not None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(child.pid, signal.SIGKILL)
                    child.wait()
            if echo is not None:
                await echo.close()
        return {"kind": kind, "p50_us": p50_us, "p99_us": p99_us, "small": small, "large": large}


def print_table(rows: list[dict]) -> None:
    header = (
        f"{'transport':<9} {'RTT p50 us':>10} {'RTT p99 us':>10} "
        f"{'100B msg/s':>11} {'100B MB/s':>9} {'64KiB msg/s':>11} {'64KiB MB/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['kind']:<9} {r['p50_us']:>10.1f} {r['p99_us']:>10.1f} "
            f"{r['small'][0]:>11,.0f} {r['small'][1]:>9.1f} "
            f"{r['large'][0]:>11,.0f} {r['large'][1]:>10.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Two-process latency and throughput benchmark of the Scribe Ledger transports.",
    )
    parser.add_argument(
        "--kinds",
        default="tcp,ipc,shm,memory",
        help="comma-separated transport kinds to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--pings", type=int, default=3000, help="ping-pong round trips (default: %(default)s)"
    )
    parser.add_argument(
        "--small-frames",
        type=int,
        default=50000,
        help="100-byte frames sent one way (default: %(default)s)",
    )
    parser.add_argument(
        "--large-frames",
        type=int,
        default=3000,
        help="64 KiB frames sent one way (default: %(default)s)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "RUN_DIR", "PEERS_JSON"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        uvloop.run(child_main(*args.child))
        return 0
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for kind in kinds:
        if kind not in transports.KINDS:
            parser.error(f"unknown kind {kind!r}; choose from {', '.join(transports.KINDS)}")
    rows = [uvloop.run(bench_kind(kind, args)) for kind in kinds]
    print(
        f"2 processes (memory: 1), uvloop; RTT = send + echo + receive of a {SMALL_FRAME_BYTES}-byte frame"
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
