"""scribe fsck: clean directories, damage located by file, offset and seq, notes for what recovery
repairs, the published-root check, both kinds of directory, and the CLI's exit codes."""

import fcntl
import os

import pytest
from crc32c import crc32c

from engines.format import FRAME_HEAD, FRAME_HEAD_BYTES, SEGMENT_HEADER_BYTES
from engines.raftlog import LedgerLog, encode_ops
from scribe import Ledger
from scribe.__main__ import main
from scribe.fsck import FsckUsageError, fsck
from scribe.raft.types import Entry, EntryType
from scribe.records import OP_DELETE, OP_PUT


def make_ledger(path, writes=150):
    with Ledger(str(path), segment_size=4096) as led:
        for i in range(writes):
            if i % 17 == 16:
                led.delete(f"k{i % 13}")
            else:
                led.apply_batch([(f"k{i % 13}", f"value-{i:05d}"), (f"b{i}", "x")])
        led.clear()
        led.put("after-clear", "y")
        return led.tree_head()


def frames(path):
    """(offset, payload length) of every frame of a segment."""
    data = open(path, "rb").read()
    off, out = SEGMENT_HEADER_BYTES, []
    while off + FRAME_HEAD_BYTES <= len(data):
        plen, _ = FRAME_HEAD.unpack_from(data, off)
        out.append((off, plen))
        off += FRAME_HEAD_BYTES + plen
    return out


def segments(path):
    return sorted(str(p) for p in path.iterdir() if p.suffix == ".seg")


def test_clean_embedded_ledger(tmp_path):
    head = make_ledger(tmp_path / "led")
    report = fsck(str(tmp_path / "led"))
    assert report.kind == "segment" and report.clean, report.damage
    assert report.records == head.size and report.root == head.root
    assert len(report.segments) == len(segments(tmp_path / "led")) > 1
    assert report.stored_hashes == head.size
    assert fsck(str(tmp_path / "led"), head.root, head.size).clean
    assert fsck(str(tmp_path / "led"), b"\x00" * 32, 0).damage  # the empty tree's root differs


def test_bit_rot_in_the_middle_is_damage_with_file_offset_and_seq(tmp_path):
    make_ledger(tmp_path / "led")
    first = segments(tmp_path / "led")[0]
    off, plen = frames(first)[10]
    with open(first, "r+b") as f:
        f.seek(off + FRAME_HEAD_BYTES + plen - 1)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))
    report = fsck(str(tmp_path / "led"))
    [damage] = report.damage
    assert (damage.file, damage.offset, damage.seq) == (first, off, 10)
    assert "CRC-32C" in damage.message


def test_torn_tail_is_a_note_not_damage(tmp_path):
    head = make_ledger(tmp_path / "led")
    last = segments(tmp_path / "led")[-1]
    with open(last, "ab") as f:
        f.write(b"\x00\x00\x00\x30garbage")
    report = fsck(str(tmp_path / "led"))
    assert report.clean and report.records == head.size
    assert any("torn tail" in n.message for n in report.notes)


def test_forged_frame_with_correct_crc(tmp_path):
    """A changed value with a recomputed CRC: only the leaf hashes and the root can tell."""
    head = make_ledger(tmp_path / "led")
    first = segments(tmp_path / "led")[0]
    off, plen = frames(first)[4]
    data = bytearray(open(first, "rb").read())
    payload = bytearray(data[off + FRAME_HEAD_BYTES : off + FRAME_HEAD_BYTES + plen])
    payload[-1] ^= 0x01  # the value's last byte
    data[off : off + FRAME_HEAD_BYTES + plen] = FRAME_HEAD.pack(plen, crc32c(payload)) + payload
    open(first, "wb").write(data)
    report = fsck(str(tmp_path / "led"))
    [damage] = report.damage
    assert (damage.file, damage.offset, damage.seq) == (first, off, 4)
    assert "leaf hash" in damage.message
    report = fsck(str(tmp_path / "led"), head.root, head.size)
    assert len(report.damage) == 2 and "rewritten" in report.damage[1].message
    report = fsck(str(tmp_path / "led"), head.root, head.size + 5)
    assert "lost" in report.damage[-1].message


def test_lost_or_missing_leaf_hashes_are_notes(tmp_path):
    head = make_ledger(tmp_path / "led")
    hashes = tmp_path / "led" / "leaves.hashes"
    hashes.write_bytes(hashes.read_bytes()[: 32 * 10 + 7])
    report = fsck(str(tmp_path / "led"))
    assert report.clean and report.root == head.root
    assert len(report.notes) == 2  # the torn 7 bytes, and the hashes recomputed at open


def test_stale_hint_is_a_note_and_a_lying_hint_is_damage(tmp_path):
    make_ledger(tmp_path / "led")
    hints = sorted(p for p in (tmp_path / "led").iterdir() if p.suffix == ".hint")
    assert hints
    hints[0].write_bytes(b"SCRBHINT" + b"\x00" * 10)
    report = fsck(str(tmp_path / "led"))
    assert report.clean and any("hint" in n.message for n in report.notes)


def build_node_dir(path, entries=30):
    log = LedgerLog(str(path), segment_bytes=4096)
    try:
        batch = []
        for index in range(1, entries + 1):
            if index % 5 == 0:
                batch.append(Entry(1 + index // 10, index, EntryType.NOOP, b""))
                continue
            ops = [
                (OP_PUT, f"n{index % 6}".encode(), f"val-{index:04d}-{j}".encode())
                for j in range(2)
            ]
            if index % 7 == 0:
                ops.append((OP_DELETE, b"n1", b""))
            batch.append(
                Entry(
                    1 + index // 10,
                    index,
                    EntryType.NORMAL,
                    encode_ops(1_700_000_000_000 + index, ops),
                )
            )
        log.append(batch)
        log.sync()
        log.apply_entries(batch)
        records = list(log.records())
        root_size = len(records)
    finally:
        log.close()
    return records, root_size


def test_clean_node_dir_and_a_forged_entry(tmp_path):
    records, size = build_node_dir(tmp_path / "node")
    report = fsck(str(tmp_path / "node"))
    assert report.kind == "raftlog" and report.clean, report.damage
    assert report.records == size
    from scribe.merkle import MerkleTree

    root = MerkleTree(b"".join(r.leaf_hash() for r in records)).root()
    assert report.root == root
    # forge: change one value byte in the first log segment's third entry, with a correct CRC
    seg = sorted(p for p in (tmp_path / "node").iterdir() if p.suffix == ".rlog")[0]
    data = bytearray(seg.read_bytes())
    off = 16
    for _ in range(2):
        plen, _ = FRAME_HEAD.unpack_from(data, off)
        off += FRAME_HEAD_BYTES + plen
    plen, _ = FRAME_HEAD.unpack_from(data, off)
    payload = bytearray(data[off + FRAME_HEAD_BYTES : off + FRAME_HEAD_BYTES + plen])
    payload[-1] ^= 0x02
    data[off : off + FRAME_HEAD_BYTES + plen] = FRAME_HEAD.pack(plen, crc32c(payload)) + payload
    seg.write_bytes(data)
    report = fsck(str(tmp_path / "node"))
    assert report.damage and all(d.file == str(seg) and d.offset == off for d in report.damage)
    assert "leaf hash" in report.damage[0].message
    assert not fsck(str(tmp_path / "node"), root, size).clean


def test_usage_errors(tmp_path):
    with pytest.raises(FsckUsageError, match="not a directory"):
        fsck(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FsckUsageError, match="no \\*.seg"):
        fsck(str(tmp_path / "empty"))
    make_ledger(tmp_path / "led", writes=5)
    fd = os.open(tmp_path / "led" / "LOCK", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(FsckUsageError, match="running process"):
            fsck(str(tmp_path / "led"))
    finally:
        os.close(fd)


def test_cli_exit_codes(tmp_path, capsys):
    head = make_ledger(tmp_path / "led", writes=20)
    led = str(tmp_path / "led")
    assert main(["fsck", led]) == 0
    out = capsys.readouterr().out
    assert "clean" in out and head.root.hex() in out and f"records: {head.size}" in out
    assert main(["fsck", led, "--expect-root", head.root.hex(), "--size", str(head.size)]) == 0
    assert main(["fsck", led, "--expect-root", "ab" * 32, "--size", "3"]) == 1
    assert "DAMAGED" in capsys.readouterr().out
    assert main(["fsck", str(tmp_path / "nope")]) == 2
    assert main(["fsck", led, "--expect-root", "zz", "--size", "1"]) == 2
    assert main(["fsck", led, "--size", "1"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["fsck"])
    assert exc.value.code == 2
