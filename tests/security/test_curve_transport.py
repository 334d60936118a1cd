"""CurveZMQ peer links: encrypted, cluster keys only, and the sender id bound to the key."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time

import pytest
import uvloop
import zmq
import zmq.asyncio

import transports
from transports import curve
from transports.base import PeerAddress
from transports.errors import TransportConfigError
from transports.zmq_transport import identity_for

pytestmark = pytest.mark.timeout(60)
KINDS = ("tcp", "ipc")


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


def run(coro, timeout_s: float = 30.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout_s)

    return uvloop.run(bounded())


def make_keys(tmp_path, ids) -> dict[int, curve.CurveKeys]:
    secret_dir, public_dir = tmp_path / "keys" / "secret", tmp_path / "keys" / "public"
    for node_id in ids:
        curve.generate_keys(secret_dir, public_dir, node_id)
    return {
        node_id: curve.load_keys(node_id, secret_dir / f"node{node_id}.key_secret", public_dir, ids)
        for node_id in ids
    }


async def started(kind, peers, run_dir, keys):
    nodes = {}
    for node_id in peers:
        t = transports.create(kind, node_id, peers, run_dir=str(run_dir), curve_keys=keys[node_id])
        await t.start()
        nodes[node_id] = t
    return nodes


async def until_delivered(sender, receiver, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sender.send(receiver.node_id, b"probe")
        try:
            from_id, frame = await asyncio.wait_for(receiver.recv(), 0.05)
        except TimeoutError:
            continue
        assert (from_id, frame) == (sender.node_id, b"probe")
        while True:  # drain the other probes
            try:
                await asyncio.wait_for(receiver.recv(), 0.05)
            except TimeoutError:
                return
    raise AssertionError(f"curve link {sender.node_id}->{receiver.node_id} never came up")


def endpoint(kind, peers, run_dir, node_id) -> str:
    if kind == "ipc":
        return "ipc://" + transports.naming.ipc_socket_path(str(run_dir), node_id)
    return f"tcp://127.0.0.1:{peers[node_id].raft_port}"


def rogue_dealer(context, kind, peers, run_dir, server_keys, claim_id, public, secret):
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.ROUTING_ID, identity_for(claim_id))
    dealer.setsockopt(zmq.CURVE_SERVERKEY, server_keys.public_key)  # public knowledge
    dealer.setsockopt(zmq.CURVE_PUBLICKEY, public)
    dealer.setsockopt(zmq.CURVE_SECRETKEY, secret)
    dealer.connect(endpoint(kind, peers, run_dir, 1))
    return dealer


@pytest.mark.parametrize("kind", KINDS)
def test_members_talk_and_a_stranger_key_is_refused(kind, tmp_path):
    """A DEALER with a fresh key pair claiming to be node 2 never gets a frame delivered,
    and node 3's key claiming node 2's identity is dropped too; real traffic still flows."""
    peers = {i: PeerAddress("127.0.0.1", p) for i, p in enumerate(free_ports(3), start=1)}
    keys = make_keys(tmp_path, list(peers))

    async def scenario():
        nodes = await started(kind, peers, tmp_path, keys)
        # a plain context: the rogue is a foreign process, not one of our asyncio transports
        context = zmq.Context()
        try:
            await until_delivered(nodes[2], nodes[1])
            await until_delivered(nodes[3], nodes[1])
            stranger_public, stranger_secret = (
                zmq.utils.z85.decode(k) for k in zmq.curve_keypair()
            )
            stranger = rogue_dealer(
                context, kind, peers, tmp_path, keys[1], 2, stranger_public, stranger_secret
            )
            # node 3's own key pair, but the routing identity of node 2
            impostor = rogue_dealer(
                context, kind, peers, tmp_path, keys[1], 2, keys[3].public_key, keys[3].secret_key
            )
            for _ in range(20):
                for dealer, frame in ((stranger, b"forged-by-stranger"), (impostor, b"forged")):
                    try:
                        dealer.send(frame, zmq.NOBLOCK)
                    except zmq.Again:  # no completed connection to queue on
                        pass
                await asyncio.sleep(0.02)
            # the impostor's connection took over node 2's route: stop it, then the real node 2
            # (which reconnects) is heard again, and nothing forged was ever delivered
            impostor.close(linger=0)
            got = []
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and (2, b"genuine") not in got:
                nodes[2].send(1, b"genuine")
                try:
                    got.append(await asyncio.wait_for(nodes[1].recv(), 0.05))
                except TimeoutError:
                    pass
            assert (2, b"genuine") in got
            assert all(frame in (b"genuine", b"probe") for _, frame in got), got
            assert nodes[1].dropped_unauthenticated > 0  # the impostor connected and was caught
        finally:
            context.destroy(linger=0)
            for t in nodes.values():
                await t.close()

    run(scenario())


def test_client_refuses_a_server_with_another_key(tmp_path):
    """A process listening on a peer's port without that peer's secret key never receives."""
    peers = {i: PeerAddress("127.0.0.1", p) for i, p in enumerate(free_ports(2), start=1)}
    keys = make_keys(tmp_path, [1, 2])
    other = make_keys(tmp_path / "other", [1, 2])

    async def scenario():
        sender = transports.create("tcp", 1, peers, run_dir=str(tmp_path), curve_keys=keys[1])
        # node 2's port, but a process with a different key pair (its own cluster's keys)
        fake = transports.create("tcp", 2, peers, run_dir=str(tmp_path), curve_keys=other[2])
        await sender.start()
        await fake.start()
        try:
            for _ in range(20):
                sender.send(2, b"secret-data")
                await asyncio.sleep(0.02)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(fake.recv(), 0.3)
        finally:
            await sender.close()
            await fake.close()

    run(scenario())


def test_key_files_and_modes(tmp_path):
    secret_file, public_file = curve.generate_keys(tmp_path / "s", tmp_path / "p", 4)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    assert public_file.name == "node4.key" and curve.node_ids_in(tmp_path / "p") == [4]
    again = curve.generate_keys(tmp_path / "s", tmp_path / "p", 4)
    assert again == (secret_file, public_file)
    keys = curve.load_keys(4, secret_file, tmp_path / "p", [4])
    assert keys.peer_keys[4] == keys.public_key
    assert "secret_key" not in repr(keys)


def test_loading_refuses_bad_keys(tmp_path):
    secret_dir, public_dir = tmp_path / "s", tmp_path / "p"
    for node_id in (1, 2):
        curve.generate_keys(secret_dir, public_dir, node_id)
    secret1 = secret_dir / "node1.key_secret"
    with pytest.raises(TransportConfigError, match="no public curve key for node 3"):
        curve.load_keys(1, secret1, public_dir, [1, 2, 3])
    with pytest.raises(TransportConfigError, match="does not match"):
        curve.load_keys(2, secret1, public_dir, [1, 2])
    public_copy = tmp_path / "node1.key"
    public_copy.write_bytes((public_dir / "node1.key").read_bytes())
    public_copy.chmod(0o600)
    with pytest.raises(TransportConfigError, match="holds no secret key"):
        curve.load_keys(1, public_copy, public_dir, [1, 2])
    os.chmod(secret1, 0o644)
    with pytest.raises(TransportConfigError, match="owner only"):
        curve.load_keys(1, secret1, public_dir, [1, 2])


def test_refuses_to_start_without_curve_support(tmp_path, monkeypatch):
    peers = {1: PeerAddress("127.0.0.1", free_ports(1)[0])}
    keys = make_keys(tmp_path, [1])
    real_has = zmq.has
    monkeypatch.setattr(zmq, "has", lambda name: False if name == "curve" else real_has(name))
    with pytest.raises(TransportConfigError, match="without CURVE support"):
        transports.create("tcp", 1, peers, run_dir=str(tmp_path), curve_keys=keys[1])
    with pytest.raises(TransportConfigError, match="without CURVE support"):
        curve.load_keys(1, tmp_path / "keys" / "secret" / "node1.key_secret", tmp_path, [1])


def test_zap_replies(tmp_path):
    keys = make_keys(tmp_path, [1, 2])

    async def scenario():
        context = zmq.asyncio.Context()
        handler = curve.ZapHandler(context, keys[1])
        try:
            domain = curve.ZAP_DOMAIN.encode()

            def ask(*frames):
                return handler.reply_to(list(frames))

            ok = ask(b"1.0", b"r1", domain, b"addr", b"", b"CURVE", keys[2].public_key)
            assert ok[2:5] == [b"200", b"OK", b"2"]
            stranger = zmq.utils.z85.decode(zmq.curve_keypair()[0])
            assert ask(b"1.0", b"r2", domain, b"a", b"", b"CURVE", stranger)[2] == b"400"
            assert (
                ask(b"1.0", b"r3", b"other", b"a", b"", b"CURVE", keys[2].public_key)[2] == b"400"
            )
            assert ask(b"1.0", b"r4", domain, b"a", b"", b"PLAIN", b"u", b"p")[2] == b"400"
            assert ask(b"2.0", b"r5", domain, b"a", b"", b"CURVE", keys[2].public_key)[2] == b"400"
            assert ask(b"1.0")[2] == b"400"
            assert handler.refused == 2
        finally:
            handler.stop()
            context.destroy(linger=0)

    run(scenario())
