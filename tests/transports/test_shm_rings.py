"""The shm transport's own guarantees: ring format, recovery from dead or corrupt peers."""

from __future__ import annotations

import asyncio
import os
import random
import select
import subprocess
import sys
import time

import pytest
import uvloop

import transports
from transports import PeerAddress
from transports.naming import shm_ring_name
from transports.shm_ring import (
    DATA_OFFSET,
    FLAG_FIRST,
    FLAG_LAST,
    STATE_ABANDONED,
    Ring,
    RingCorruptError,
    RingFormatError,
)
from transports.shm_transport import _attach, _close_segment

pytestmark = pytest.mark.timeout(60)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = {1: PeerAddress("127.0.0.1", 1), 2: PeerAddress("127.0.0.1", 2)}


def run(coro, timeout_s: float = 20.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout_s)

    return uvloop.run(bounded())


def read_frame(ring: Ring) -> bytes | None:
    parts = []
    while True:
        item = ring.read_chunk()
        if item is None:
            return None
        chunk, flags, _ = item
        parts.append(chunk)
        if flags & FLAG_LAST:
            return b"".join(parts)


def test_ring_wraps_around_and_keeps_every_frame_intact():
    buf = memoryview(bytearray(DATA_OFFSET + 512))
    ring = Ring.initialise(buf, generation=7)
    rng = random.Random(3)
    pending: list[bytes] = []
    written = read = 0
    for _ in range(5000):
        if rng.random() < 0.55:
            frame = rng.randbytes(rng.randrange(0, 200))
            if ring.write_chunk(memoryview(frame), FLAG_FIRST | FLAG_LAST, len(frame)):
                pending.append(frame)
                written += 1
        elif pending:
            assert read_frame(ring) == pending.pop(0)
            read += 1
    while pending:
        assert read_frame(ring) == pending.pop(0)
        read += 1
    assert read_frame(ring) is None
    assert written == read > 1000  # many laps around a 512-byte ring


def test_ring_refuses_what_does_not_fit_and_rejects_foreign_segments():
    buf = memoryview(bytearray(DATA_OFFSET + 256))
    ring = Ring.initialise(buf, generation=1)
    assert not ring.write_chunk(memoryview(b"x" * 300), FLAG_FIRST | FLAG_LAST, 300)
    assert ring.used_bytes() == 0
    with pytest.raises(RingFormatError):
        Ring(memoryview(bytearray(DATA_OFFSET + 256)))  # no magic: not (yet) a ring


def test_ring_detects_a_corrupted_chunk_instead_of_delivering_it():
    buf = memoryview(bytearray(DATA_OFFSET + 256))
    ring = Ring.initialise(buf, generation=1)
    assert ring.write_chunk(memoryview(b"payload!"), FLAG_FIRST | FLAG_LAST, 8)
    buf[DATA_OFFSET + 16] ^= 0xFF  # first payload byte
    with pytest.raises(RingCorruptError):
        ring.read_chunk()


async def _pair(run_dir: str):
    nodes = {i: transports.create("shm", i, PEERS, run_dir=run_dir) for i in PEERS}
    for t in nodes.values():
        await t.start()
    return nodes


async def _until_delivered(sender, receiver, frame: bytes) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        sender.send(receiver.node_id, frame)
        try:
            got = await asyncio.wait_for(receiver.recv(), 0.05)
        except TimeoutError:
            continue
        assert got == (sender.node_id, frame)
        return
    raise AssertionError("never delivered")


def test_half_frame_of_a_killed_sender_is_dropped_never_delivered(tmp_path):
    async def scenario():
        nodes = await _pair(str(tmp_path))
        try:
            # A sender killed after the first chunk of a three-chunk frame.
            segment = _attach(shm_ring_name(str(tmp_path), 1, 2))
            ring = Ring(segment.buf)
            assert ring.write_chunk(memoryview(b"a" * 10), FLAG_FIRST, 30)
            del ring
            _close_segment(segment, unlink=False)
            # Its restarted incarnation sends whole frames on the same ring.
            assert nodes[1].send(2, b"whole frame")
            assert await asyncio.wait_for(nodes[2].recv(), 5) == (1, b"whole frame")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(nodes[2].recv(), 0.1)
        finally:
            for t in nodes.values():
                await t.close()

    run(scenario())


def test_corrupted_ring_is_replaced_and_traffic_resumes(tmp_path):
    async def scenario():
        nodes = await _pair(str(tmp_path))
        try:
            await _until_delivered(nodes[1], nodes[2], b"before")
            name = shm_ring_name(str(tmp_path), 1, 2)
            segment = _attach(name)
            old_generation = Ring(segment.buf).generation
            assert nodes[1].send(2, b"to be corrupted")
            tail = int.from_bytes(segment.buf[128:136], sys.byteorder) % Ring(segment.buf).capacity
            segment.buf[DATA_OFFSET + tail + 20] ^= 0x55
            with pytest.raises(TimeoutError):  # the damaged frame is never delivered
                await asyncio.wait_for(nodes[2].recv(), 0.1)
            assert Ring(segment.buf).state == STATE_ABANDONED
            _close_segment(segment, unlink=False)
            await _until_delivered(nodes[1], nodes[2], b"after")
            fresh = _attach(name)
            assert Ring(fresh.buf).generation != old_generation
            _close_segment(fresh, unlink=False)
        finally:
            for t in nodes.values():
                await t.close()

    run(scenario())


def test_stale_ring_of_a_killed_receiver_is_abandoned_on_restart(tmp_path):
    run_dir = str(tmp_path)

    async def scenario():
        receiver = transports.create("shm", 2, PEERS, run_dir=run_dir)
        await receiver.start()
        sender = transports.create("shm", 1, PEERS, run_dir=run_dir)
        await sender.start()
        await _until_delivered(sender, receiver, b"first life")
        assert sender.send(2, b"stale: written before the receiver died")
        # SIGKILL of the receiver: nothing closes, nothing unlinks its ring.
        receiver._started = False
        receiver._closed = True
        receiver._loop.remove_reader(receiver._wake_sock.fileno())
        receiver._wake_sock.close()
        receiver._wake_sock = None
        again = transports.create("shm", 2, PEERS, run_dir=run_dir)
        await again.start()
        try:
            await _until_delivered(sender, again, b"second life")
            assert sender.send(2, b"more")
            assert await asyncio.wait_for(again.recv(), 5) == (1, b"more")
        finally:
            await sender.close()
            await again.close()
            receiver._poke_sock.close()
            for inbound in receiver._inbound.values():
                inbound.ring.release()
                _close_segment(inbound.segment, unlink=False)

    run(scenario())
    assert transports.shm_cleanup(run_dir) == []


def test_other_processes_attaching_a_ring_do_not_unlink_it_at_exit(tmp_path):
    run_dir = str(tmp_path)

    async def scenario():
        nodes = await _pair(run_dir)
        try:
            name = shm_ring_name(run_dir, 1, 2)
            code = (
                "from transports.shm_transport import _attach, _close_segment\n"
                f"s = _attach({name!r}); assert s is not None; _close_segment(s, unlink=False)\n"
            )
            env = dict(os.environ, PYTHONPATH=REPO_ROOT)
            subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=20)
            assert os.path.exists(os.path.join("/dev/shm", name))
            await _until_delivered(nodes[1], nodes[2], b"still there")
        finally:
            for t in nodes.values():
                await t.close()

    run(scenario())


def test_flush_wakes_the_receiver_before_the_sender_yields_to_its_loop(tmp_path):
    # A node flushes before its fsync: the follower must start on the append while the leader's
    # loop is still blocked, not when that loop next turns.
    async def scenario():
        nodes = await _pair(str(tmp_path))
        try:
            await _until_delivered(nodes[1], nodes[2], b"warm-up")  # the ring is attached
            wake_fd = nodes[2]._wake_sock.fileno()
            assert nodes[1].send(2, b"unflushed")
            assert select.select([wake_fd], [], [], 0)[0] == []  # the poke waits for the loop
            assert await asyncio.wait_for(nodes[2].recv(), 5) == (1, b"unflushed")
            assert nodes[1].send(2, b"flushed")
            nodes[1].flush()
            assert select.select([wake_fd], [], [], 0)[0] == [wake_fd]  # poked already
            assert await asyncio.wait_for(nodes[2].recv(), 5) == (1, b"flushed")
            nodes[1].flush()  # nothing written since: no poke
            await asyncio.sleep(0.05)
            assert select.select([wake_fd], [], [], 0)[0] == []
        finally:
            for t in nodes.values():
                await t.close()

    run(scenario())
