"""`scribe fsck DIR`: check a stopped node's or an embedded ledger's data directory, read-only.

    python -m scribe fsck DIR [--expect-root HEX --size N]

The kind of directory is told by its files: `*.seg` (an embedded ledger, engines.segment) or
`*.rlog` (a cluster node, engines.raftlog). Every checksum is verified (segment headers, frames,
hint files, raft.state slots), every record is decoded and checked (seq order, op, lengths,
version links), every leaf hash is recomputed from the records and compared with leaves.hashes,
and the Merkle root is recomputed. `--expect-root HEX --size N` also checks that the tree of the
first N records has a root published earlier (a signed tree head): it catches a rewrite even when
the attacker fixed leaves.hashes too.

Nothing is modified: what recovery at open would repair (a torn tail, a stale hint, a short
leaves.hashes) is reported as a note; what it would refuse, or what contradicts the records, is
damage. Exit codes: 0 clean (notes allowed), 1 damaged, 2 bad usage or unreadable directory.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import struct
from dataclasses import dataclass, field

from crc32c import crc32c

from engines.base import HASHES_FILE
from engines.format import (
    FLAG_COMMIT,
    FLAGS_KNOWN,
    FRAME_HEAD,
    FRAME_HEAD_BYTES,
    LEAF_HASH_INPUT_OFFSET,
    PAYLOAD_BYTES_MIN,
    PAYLOAD_HEAD,
    PAYLOAD_HEAD_BYTES,
    SEGMENT_HEADER_BYTES,
    SEGMENT_SUFFIX,
    SEQ_OFFSET_IN_FRAME,
    U32,
    check_segment_header,
)
from engines.hint import HINT_SUFFIX, decode_hint
from engines.leafstore import HASH_BYTES
from scribe.errors import CorruptionError
from scribe.limits import FRAME_PAYLOAD_BYTES_MAX
from scribe.merkle import MerkleTree
from scribe.records import OP_CLEAR, OPS, encode_leaf_data

EXIT_CLEAN = 0
EXIT_DAMAGED = 1
EXIT_USAGE = 2
RLOG_SUFFIX = ".rlog"
_sha256 = hashlib.sha256
_U64 = struct.Struct(">Q")


class FsckUsageError(Exception):
    """The directory cannot be checked at all (missing, empty, in use, mixed kinds)."""


@dataclass(frozen=True)
class Finding:
    """One problem (damage) or note, located as precisely as known."""

    message: str
    file: str | None = None
    offset: int | None = None
    seq: int | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(os.path.basename(self.file))
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        return (", ".join(where) + ": " if where else "") + self.message


@dataclass
class FsckReport:
    kind: str  # "segment" (embedded ledger) or "raftlog" (cluster node)
    path: str
    segments: list[str] = field(default_factory=list)
    records: int = 0
    leaf_hashes: bytearray = field(default_factory=bytearray)  # recomputed from the records
    stored_hashes: int = 0
    root: bytes = b""
    damage: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.damage


# ---- shared pieces ------------------------------------------------------------------------------


def _frames(data: bytes, start: int, min_payload: int):
    """Yield (offset, payload memoryview) of each CRC-valid frame; then (offset, why) at the first
    bad one, as a str, and stop."""
    mv = memoryview(data)
    off, n = start, len(data)
    while off < n:
        if n - off < FRAME_HEAD_BYTES:
            yield off, "incomplete frame header"
            return
        plen, crc = FRAME_HEAD.unpack_from(data, off)
        end = off + FRAME_HEAD_BYTES + plen
        if plen < min_payload or plen > FRAME_PAYLOAD_BYTES_MAX:
            yield off, f"impossible frame length {plen}"
            return
        if end > n:
            yield off, "frame runs past the end of the file"
            return
        payload = mv[off + FRAME_HEAD_BYTES : end]
        if crc32c(payload) != crc:
            yield off, "frame checksum (CRC-32C) mismatch"
            return
        yield off, payload
        off = end


def _valid_frame_after(
    data: bytes, bad_off: int, min_payload: int, next_ids: range, id_offset: int
) -> int | None:
    """Offset of a CRC-valid frame after bad_off carrying one of `next_ids` (a u64be at
    `id_offset` from the frame start): damage in the middle of the log rather than a torn tail."""
    mv = memoryview(data)
    for ident in next_ids:
        needle = _U64.pack(ident)
        hit = data.find(needle, bad_off + 1)
        while hit >= 0:
            cand = hit - id_offset
            if cand > bad_off and len(data) - cand >= FRAME_HEAD_BYTES:
                plen, crc = FRAME_HEAD.unpack_from(data, cand)
                end = cand + FRAME_HEAD_BYTES + plen
                if min_payload <= plen <= FRAME_PAYLOAD_BYTES_MAX and end <= len(data):
                    if crc32c(mv[cand + FRAME_HEAD_BYTES : end]) == crc:
                        return cand
            hit = data.find(needle, hit + 1)
    return None


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _check_not_in_use(path: str) -> None:
    lock = os.path.join(path, "LOCK")
    if not os.path.exists(lock):
        return
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise FsckUsageError(
            f"{path} is open in a running process (its LOCK is held): stop it first"
        ) from None
    finally:
        os.close(fd)


def _compare_hashes(report: FsckReport, where: dict[int, tuple[str, int]]) -> None:
    """Compare the recomputed leaf hashes with leaves.hashes; `where` locates each seq."""
    path = os.path.join(report.path, HASHES_FILE)
    stored = _read(path) if os.path.exists(path) else b""
    if len(stored) % HASH_BYTES:
        report.notes.append(
            Finding(
                f"{len(stored) % HASH_BYTES} trailing bytes (a torn write; cut at open)",
                path,
                len(stored) // HASH_BYTES * HASH_BYTES,
            )
        )
    count = len(stored) // HASH_BYTES
    report.stored_hashes = count
    mine = report.leaf_hashes
    n = report.records
    mismatches = 0
    for seq in range(min(count, n)):
        lo = seq * HASH_BYTES
        if stored[lo : lo + HASH_BYTES] != mine[lo : lo + HASH_BYTES]:
            mismatches += 1
            file, offset = where.get(seq, (None, None))
            report.damage.append(
                Finding(
                    f"the record's leaf hash {mine[lo : lo + HASH_BYTES].hex()} differs from "
                    f"leaves.hashes ({stored[lo : lo + HASH_BYTES].hex()}): the record was "
                    "changed after it was written",
                    file,
                    offset,
                    seq,
                )
            )
    if count < n:
        report.notes.append(
            Finding(f"holds {count} of {n} leaf hashes; the rest are recomputed at open", path)
        )
    elif count > n:
        report.notes.append(
            Finding(
                f"holds {count} leaf hashes for {n} records (records lost in a torn tail?); "
                "the extra ones are cut at open",
                path,
            )
        )
    if mismatches == 0 and count:
        report.details.append(f"leaves.hashes: {count} stored, every one matches its record")


# ---- embedded ledger: *.seg ---------------------------------------------------------------------


def _check_hint(report: FsckReport, seg_path: str, data: bytes, base: int, parsed) -> None:
    """A hint the engine would trust at open (the same freshness test) must match the records."""
    hint_path = seg_path[: -len(SEGMENT_SUFFIX)] + HINT_SUFFIX
    if not os.path.exists(hint_path):
        return
    hint = decode_hint(_read(hint_path))
    if hint is None:
        report.notes.append(
            Finding("hint is damaged (rebuilt from the segment at open)", hint_path)
        )
        return
    offsets = [o for o, _, _ in parsed]
    covered = [i for i, o in enumerate(offsets) if o < hint.covered_bytes]
    fresh = hint.base_seq == base and SEGMENT_HEADER_BYTES <= hint.covered_bytes <= len(data)
    if fresh and hint.ops:
        last = hint.last_frame_offset
        fresh = (
            last + FRAME_HEAD_BYTES <= len(data)
            and FRAME_HEAD.unpack_from(data, last)[1] == hint.last_frame_crc
        )
    if not fresh:
        report.notes.append(Finding("hint is stale (rebuilt from the segment at open)", hint_path))
        return
    for i, (offset, op, key) in enumerate(parsed[: len(covered)]):
        if (
            i >= len(hint.offsets)
            or hint.offsets[i] != offset
            or hint.ops[i] != op
            or hint.keys[i] != key
        ):
            report.damage.append(
                Finding(
                    "the hint disagrees with the segment about this record (the index built "
                    "from it at open would be wrong)",
                    hint_path,
                    offset,
                    base + i,
                )
            )
            return
    if len(hint.offsets) != len(covered):
        report.damage.append(
            Finding(
                f"the hint lists {len(hint.offsets)} records where the segment has "
                f"{len(covered)} in its first {hint.covered_bytes} bytes",
                hint_path,
            )
        )


def _check_segments(report: FsckReport, names: list[str]) -> dict[int, tuple[str, int]]:
    where: dict[int, tuple[str, int]] = {}
    latest: dict[bytes, int] = {}  # key -> seq of its newest record so far
    hashes = report.leaf_hashes
    seq = 0
    for i, name in enumerate(names):
        path = os.path.join(report.path, name)
        is_last = i == len(names) - 1
        try:
            base = int(name[: -len(SEGMENT_SUFFIX)])
        except ValueError:
            report.damage.append(Finding("unexpected segment file name", path))
            return where
        if base != seq:
            report.damage.append(
                Finding(f"segment starts at seq {base} but the records before end at {seq}", path)
            )
            return where
        data = _read(path)
        problem = check_segment_header(data)
        if problem:
            report.damage.append(Finding(problem, path, 0))
            return where
        parsed: list[tuple[int, int, bytes]] = []
        group: list[tuple[int, int, bytes, bytes]] = []  # frames of an atomic group not yet closed
        stop = None
        for off, payload in _frames(data, SEGMENT_HEADER_BYTES, PAYLOAD_BYTES_MIN):
            if isinstance(payload, str):
                stop = (off, payload)
                break
            prev1, flags, zero, rseq, _ts, op, klen = PAYLOAD_HEAD.unpack_from(payload, 0)
            record_seq = seq + len(group)
            impossible = None
            if rseq != record_seq:
                impossible = f"the record holds seq {rseq} where seq {record_seq} belongs"
            elif op not in OPS or flags & ~FLAGS_KNOWN or zero:
                impossible = f"unknown op {op}, flags {flags} or leaf prefix {zero}"
            elif PAYLOAD_HEAD_BYTES + klen + 4 > len(payload) or (
                PAYLOAD_HEAD_BYTES
                + klen
                + 4
                + U32.unpack_from(payload, PAYLOAD_HEAD_BYTES + klen)[0]
                != len(payload)
            ):
                impossible = "the key and value lengths do not match the record size"
            if impossible:
                report.damage.append(Finding(impossible, path, off, record_seq))
                return where
            key = bytes(payload[PAYLOAD_HEAD_BYTES : PAYLOAD_HEAD_BYTES + klen])
            if op == OP_CLEAR:
                if klen or prev1:
                    report.damage.append(
                        Finding("a clear record carries a key or a link", path, off, record_seq)
                    )
            else:
                expected = latest.get(key)
                if prev1 != (0 if expected is None else expected + 1):
                    want = "none" if expected is None else f"seq {expected}"
                    got = "none" if prev1 == 0 else f"seq {prev1 - 1}"
                    report.damage.append(
                        Finding(
                            f"the record links to {got} as the key's previous version, "
                            f"but that is {want}",
                            path,
                            off,
                            record_seq,
                        )
                    )
                latest[key] = record_seq
            leaf = _sha256(payload[LEAF_HASH_INPUT_OFFSET:]).digest()
            group.append((off, op, key, leaf))
            if flags & FLAG_COMMIT:
                for g_off, g_op, g_key, g_leaf in group:
                    where[seq] = (path, g_off)
                    parsed.append((g_off, g_op, g_key))
                    hashes += g_leaf
                    seq += 1
                group = []
        report.segments.append(name)
        if group:
            off0 = group[0][0]
            message = f"{len(group)} record(s) of an atomic batch without its last record"
            if is_last and stop is None:
                report.notes.append(Finding(message + " (a torn tail, cut at open)", path, off0))
            elif not is_last:
                report.damage.append(Finding("the segment ends inside an atomic batch", path, off0))
        if stop is not None:
            off, why = stop
            following = _valid_frame_after(
                data, off, PAYLOAD_BYTES_MIN, range(seq, seq + 4), SEQ_OFFSET_IN_FRAME
            )
            if is_last and following is None:
                report.notes.append(
                    Finding(
                        f"{why}: a torn tail of {len(data) - off} bytes, cut at open", path, off
                    )
                )
            else:
                detail = f" (a valid record follows at offset {following})" if following else ""
                report.damage.append(Finding(why + detail, path, off, seq + len(group)))
                return where
        _check_hint(report, path, data, base, parsed)
    return where


# ---- cluster node: *.rlog -----------------------------------------------------------------------


def _check_raft_state(report: FsckReport, state_file: str, state_struct, slot_bytes: int) -> int:
    """The persisted commit index (0 when unknown)."""
    path = os.path.join(report.path, state_file)
    if not os.path.exists(path):
        report.notes.append(Finding("missing (a node that never voted or committed)", path))
        return 0
    data = _read(path)
    best = None
    for slot in range(2):
        chunk = data[slot * slot_bytes : slot * slot_bytes + state_struct.size + 4]
        if len(chunk) < state_struct.size + 4:
            continue
        (crc,) = U32.unpack_from(chunk, state_struct.size)
        if crc32c(chunk[: state_struct.size]) != crc:
            report.notes.append(
                Finding(f"slot {slot} fails its checksum (a torn update)", path, slot * slot_bytes)
            )
            continue
        gen, term, vote, commit = state_struct.unpack_from(chunk, 0)
        if best is None or gen > best[0]:
            best = (gen, term, vote, commit)
    if best is None:
        if data:
            report.damage.append(Finding("both hard state slots are damaged", path, 0))
        return 0
    _, term, vote, commit = best
    report.details.append(f"raft.state: term {term}, vote {vote}, commit index {commit}")
    return commit


def _check_rlog(report: FsckReport, names: list[str]) -> dict[int, tuple[str, int]]:
    from engines import raftlog as rl

    where: dict[int, tuple[str, int]] = {}
    commit = _check_raft_state(report, rl.STATE_FILE, rl._STATE, rl._STATE_SLOT_BYTES)
    index = 1
    last_term = 0
    records: list[tuple[int, int, int, bytes, bytes, str, int]] = []  # + entry index, file, offset
    for i, name in enumerate(names):
        path = os.path.join(report.path, name)
        is_last = i == len(names) - 1
        try:
            first = int(name[: -len(RLOG_SUFFIX)])
        except ValueError:
            report.damage.append(Finding("unexpected log segment file name", path))
            break
        if first != index:
            report.damage.append(Finding(f"starts at entry {first}, expected {index}", path))
            break
        data = _read(path)
        problem = rl._check_seg_header(data)
        if problem:
            report.damage.append(Finding(problem, path, 0))
            break
        report.segments.append(name)
        broken = False
        for off, payload in _frames(data, rl.SEG_HEADER_BYTES, rl.ENTRY_HEAD_BYTES):
            if isinstance(payload, str):
                following = _valid_frame_after(
                    data, off, rl.ENTRY_HEAD_BYTES, range(index, index + 4), FRAME_HEAD_BYTES + 8
                )
                if is_last and following is None:
                    report.notes.append(
                        Finding(f"{payload}: a torn tail of {len(data) - off} bytes", path, off)
                    )
                else:
                    report.damage.append(Finding(payload, path, off))
                    broken = True
                break
            term, eindex, etype = rl._ENTRY_HEAD.unpack_from(payload, 0)
            if eindex != index or etype not in (0, 1, 2) or term < last_term:
                report.damage.append(
                    Finding(
                        f"impossible entry (index {eindex} where {index} belongs, type {etype}, "
                        f"term {term} after {last_term})",
                        path,
                        off,
                    )
                )
                broken = True
                break
            data_part = payload[rl.ENTRY_HEAD_BYTES :]
            if etype == 0 and len(data_part):
                try:
                    ts, ops = rl.decode_ops(data_part)
                except CorruptionError as exc:
                    report.damage.append(Finding(f"entry {index}: {exc}", path, off))
                    broken = True
                    break
                for op, key, value, _op_off in ops:
                    records.append((index, ts, op, key, value, path, off))
            last_term = term
            index += 1
        if broken:
            break
    stored_path = os.path.join(report.path, HASHES_FILE)
    stored_count = (
        os.path.getsize(stored_path) if os.path.exists(stored_path) else 0
    ) // HASH_BYTES
    # Records of committed entries: up to the persisted commit index, and at least every record
    # whose leaf hash was stored (a node stores leaf hashes only of records it applied).
    committed = sum(1 for r in records if r[0] <= commit)
    applied = max(committed, min(stored_count, len(records)))
    if len(records) > applied:
        report.details.append(
            f"{len(records) - applied} record(s) in entries past the known commit index "
            "(not counted: a new leader may still replace them)"
        )
    hashes = report.leaf_hashes
    for seq, (_entry_index, ts, op, key, value, path, off) in enumerate(records[:applied]):
        hashes += _sha256(b"\x00" + encode_leaf_data(seq, ts, op, key, value)).digest()
        where[seq] = (path, off)
    report.details.append(f"log: {index - 1} entries, commit index {commit} (persisted)")
    return where


# ---- the check ----------------------------------------------------------------------------------


def fsck(path: str, expect_root: bytes | None = None, expect_size: int | None = None) -> FsckReport:
    """Check the data directory at `path`; raises FsckUsageError when it cannot be checked."""
    if not os.path.isdir(path):
        raise FsckUsageError(f"{path} is not a directory")
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise FsckUsageError(f"cannot list {path}: {exc}") from None
    segs = [n for n in names if n.endswith(SEGMENT_SUFFIX)]
    rlogs = [n for n in names if n.endswith(RLOG_SUFFIX)]
    if segs and rlogs:
        raise FsckUsageError(f"{path} holds both *.seg and *.rlog files: which ledger is it?")
    if not segs and not rlogs:
        raise FsckUsageError(f"{path} holds no *.seg or *.rlog files: not a ledger directory")
    _check_not_in_use(path)
    report = FsckReport("segment" if segs else "raftlog", os.path.abspath(path))
    try:
        where = _check_segments(report, segs) if segs else _check_rlog(report, rlogs)
    except OSError as exc:
        raise FsckUsageError(f"cannot read {path}: {exc}") from None
    report.records = len(report.leaf_hashes) // HASH_BYTES
    _compare_hashes(report, where)
    tree = MerkleTree(bytes(report.leaf_hashes))
    report.root = tree.root()
    if expect_root is not None:
        size = report.records if expect_size is None else expect_size
        if size > tree.size:
            report.damage.append(
                Finding(
                    f"the published head covers {size} records but only {tree.size} are intact "
                    "here: records were lost"
                )
            )
        else:
            root = tree.root(size)
            if root != expect_root:
                report.damage.append(
                    Finding(
                        f"the tree of the first {size} records has root {root.hex()}, not the "
                        f"published {expect_root.hex()}: the ledger was rewritten"
                    )
                )
            else:
                report.details.append(f"the first {size} records have the published root")
    return report


def format_report(report: FsckReport) -> list[str]:
    kind = "embedded ledger (*.seg)" if report.kind == "segment" else "cluster node (*.rlog)"
    lines = [f"fsck {report.path}: {kind}"]
    segs = report.segments
    shown = ", ".join(segs) if len(segs) <= 4 else f"{segs[0]} ... {segs[-1]}"
    lines.append(f"  segments: {len(segs)} ({shown})")
    lines.append(f"  records: {report.records}  tree size: {report.records}")
    lines.append(f"  root: {report.root.hex()}")
    lines += [f"  {d}" for d in report.details]
    lines += [f"  note: {n}" for n in report.notes]
    if report.clean:
        lines.append("clean: every checksum, record and leaf hash checks out")
    else:
        lines.append(f"DAMAGED: {len(report.damage)} problem(s)")
        lines += [f"  {d}" for d in report.damage]
    return lines


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="the data directory of a stopped node or embedded ledger")
    parser.add_argument("--expect-root", help="hex root published earlier (a signed tree head)")
    parser.add_argument("--size", type=int, help="the tree size of --expect-root")


def run(args: argparse.Namespace) -> int:
    expect_root = None
    if args.expect_root is not None or args.size is not None:
        if args.expect_root is None or args.size is None:
            print("scribe fsck: --expect-root and --size go together")
            return EXIT_USAGE
        try:
            expect_root = bytes.fromhex(args.expect_root)
        except ValueError:
            expect_root = b""
        if len(expect_root) != HASH_BYTES or args.size < 0:
            print("scribe fsck: --expect-root must be 32 bytes of hex and --size >= 0")
            return EXIT_USAGE
    try:
        report = fsck(args.dir, expect_root, args.size)
    except FsckUsageError as exc:
        print(f"scribe fsck: {exc}")
        return EXIT_USAGE
    for line in format_report(report):
        print(line)
    return EXIT_CLEAN if report.clean else EXIT_DAMAGED
