"""The tamper test: an attacker with the disk rewrites a committed value inside a segment file, with
a correct CRC and the same length (not bit rot: every checksum still holds). fsck, the verifying
client holding a head published before, and the monitor must all catch it.

Two attackers: a naive one changes only the segment (the ledger then refuses to open); a thorough
one also rewrites the record's entry in leaves.hashes, so the node's tree (and every head it signs
from now on) is the forged one.
"""

import hashlib
import json
import os

import pytest
from crc32c import crc32c

from engines.format import FRAME_HEAD, FRAME_HEAD_BYTES, PAYLOAD_HEAD, SEGMENT_HEADER_BYTES
from scribe import CorruptionError, Ledger
from scribe.__main__ import main
from scribe.client import Client
from scribe.fsck import fsck
from scribe.http import LedgerBackend, create_app, start_server
from scribe.records import encode_leaf_data

ACCOUNTS = 10
WRITES = 120


def rewrite_value(data_dir: str, seq: int, new_value: bytes) -> tuple[str, int, bytes]:
    """Rewrite record `seq`'s value in place, fixing its frame's CRC-32C; (file, offset, old)."""
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith(".seg"):
            continue
        path = os.path.join(data_dir, name)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        off = SEGMENT_HEADER_BYTES
        while off + FRAME_HEAD_BYTES <= len(data):
            plen, _ = FRAME_HEAD.unpack_from(data, off)
            start = off + FRAME_HEAD_BYTES
            payload = bytes(data[start : start + plen])
            _, _, _, rseq, _, _, klen = PAYLOAD_HEAD.unpack_from(payload, 0)
            if rseq == seq:
                value_at = PAYLOAD_HEAD.size + klen + 4
                old = payload[value_at:]
                assert len(new_value) == len(old), "the attacker keeps the length"
                forged = payload[:value_at] + new_value
                data[off : start + plen] = FRAME_HEAD.pack(plen, crc32c(forged)) + forged
                with open(path, "r+b") as f:
                    f.write(data)
                return path, off, old
            off = start + plen
    raise AssertionError(f"record {seq} not found")


def forge_leaf_hash(data_dir: str, seq: int, leaf_data: bytes) -> None:
    with open(os.path.join(data_dir, "leaves.hashes"), "r+b") as f:
        f.seek(32 * seq)
        f.write(hashlib.sha256(b"\x00" + leaf_data).digest())


class Node:
    """One HTTP server whose ledger can be stopped and reopened (the node restarting on the same
    URL, as its users know it)."""

    def __init__(self, path: str):
        self.path = path
        self.ledger = None
        self.backend = None
        self.open()
        self.server = start_server(create_app(self))

    def open(self) -> None:
        self.ledger = Ledger(self.path, segment_size=4096)
        self.backend = LedgerBackend(self.ledger)

    def stop_ledger(self) -> None:
        self.ledger.close()

    def __getattr__(self, name):  # the app calls the backend through this object
        return getattr(self.backend, name)


@pytest.mark.parametrize("thorough", [False, True], ids=["segment-only", "segment-and-hashes"])
def test_a_rewritten_value_is_caught(tmp_path, capsys, thorough):
    data = str(tmp_path / "ledger")
    verify_state = str(tmp_path / "verify-state.json")
    monitor_state = str(tmp_path / "monitor-state.json")

    node = Node(data)
    led, server = node.ledger, node.server
    try:
        for i in range(WRITES):
            led.put(f"acct/{i % ACCOUNTS}", f"balance={i:04d}")
        # A client verifies the account and trusts the head; the monitor sees it; it is published.
        assert main(["verify", "acct/3", "--node", server.url, "--state", verify_state]) == 0
        assert (
            main(["monitor", "--node", server.url, "--state", monitor_state, "--duration", "0"])
            == 0
        )
        with Client(server.url) as c:
            published = c.tree_head().to_json()
        victim = led.history("acct/3")[-1]
    except BaseException:
        server.stop()
        raise
    finally:
        node.stop_ledger()
    assert published["tree_size"] == WRITES
    capsys.readouterr()

    seg_path, offset, old = rewrite_value(data, victim.seq, b"balance=9999")
    assert old == b"balance=0113"
    if thorough:
        forge_leaf_hash(
            data,
            victim.seq,
            encode_leaf_data(victim.seq, victim.ts_ms, 1, b"acct/3", b"balance=9999"),
        )

    # (a) fsck: the leaf hash no longer matches leaves.hashes (naive attacker), and the tree of
    # the published size no longer has the published root (both attackers).
    report = fsck(data)
    if thorough:
        assert report.clean  # self-consistent forgery: only the published root can tell
    else:
        [damage] = report.damage
        assert (damage.file, damage.offset, damage.seq) == (seg_path, offset, victim.seq)
        assert "leaf hash" in damage.message
    published_root = published["root"]
    report = fsck(data, bytes.fromhex(published_root), published["tree_size"])
    assert any("rewritten" in d.message for d in report.damage)
    code = main(["fsck", data, "--expect-root", published_root, "--size", str(WRITES)])
    out = capsys.readouterr().out
    assert code == 1 and "DAMAGED" in out and published_root in out

    if not thorough:
        # The naive forgery never gets served: at open the ledger compares its newest records (and
        # a random sample) with leaves.hashes, and refuses to start on a mismatch.
        try:
            with pytest.raises(CorruptionError) as err:
                node.open()
            assert f"record {victim.seq} does not match its leaf hash" in str(err.value)
        finally:
            server.stop()
        return

    # The node restarts on the altered disk (same key, same URL) and goes on serving and writing.
    node.open()
    led = node.ledger
    try:
        assert led.get("acct/3") == b"balance=9999"  # the forgery is served as the current value
        led.put("acct/11", "balance=0001")

        # (b) the verifying client, whose state holds the head published before, refuses.
        code = main(["verify", "acct/3", "--node", server.url, "--state", verify_state])
        out = capsys.readouterr().out
        assert code == 1, out
        assert "VERIFICATION FAILED" in out
        if thorough:
            assert "NOT consistent" in out  # the new tree does not extend the trusted one
        else:
            assert "does NOT verify" in out  # the record does not hash into the signed tree
        with open(verify_state) as f:
            trusted = [e["head"] for e in json.load(f)["keys"].values()]
        assert trusted == [published] or trusted[0]["root"] == published_root  # state untouched

        # (c) the monitor raises the alarm.
        code = main(["monitor", "--node", server.url, "--state", monitor_state, "--duration", "0"])
        out = capsys.readouterr().out
        assert code == 1, out
        alarm = [line for line in out.splitlines() if line.startswith("ALARM")]
        assert alarm and server.url in alarm[0]
        assert published_root in alarm[0] or "not the records signed" in alarm[0]
    finally:
        server.stop()
        led.close()
