"""LedgerLog: one durable log that is both the Raft log and the ledger (nothing is written twice).

Raft entries are stored as frames in segment files; a NORMAL entry's data is a batch of ledger
operations with the leader's timestamp (`encode_ops`). Applying a committed entry turns each of its
operations into a ledger record with the next dense seq; the record's bytes stay where the entry
was written, and the in-memory index (engines.base.Engine) points into the entry.

Data directory:

    00000000000000000001.rlog   segments; the name is the Raft index of the first entry
    raft.state                  hard state (term, vote, commit) in two checksummed slots
    leaves.hashes               Merkle leaf hash of every applied record (32 bytes each)
    LOCK

    segment header = b"SCRIBLOG" || u32be(version) || u32be(crc32c of the 12 bytes before)
    frame          = u32be(len(payload)) || u32be(crc32c(payload)) || payload
    payload        = u64be(term) || u64be(index) || u8(entry type) || data
    NORMAL data    = u8(1) || u64be(ts_ms) || u32be(count) || count x (u8 op || u32be klen || key || u32be vlen || value)

The commit index in raft.state is persisted lazily (with every term/vote change, and at most every
COMMIT_PERSIST_INTERVAL_S otherwise): it is only a lower bound used to replay the state machine at
open; the rest is committed again by the leader. Entries are fsynced before the hard state that
commits them, so the persisted commit never exceeds the durable log.

leaves.hashes is derived from the log, so it too is written lazily: at most every
LEAF_HASHES_PERSIST_INTERVAL_S, and at close. A sync therefore costs one fsync (the log), not two;
open recomputes the hashes of the records past the end of the file.

A torn tail of the last segment is truncated as in engines.segment; damage anywhere else raises
CorruptionError: a node never votes or serves with a log it silently shortened.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from array import array
from collections import OrderedDict
from itertools import repeat

from crc32c import crc32c

from scribe.errors import CorruptionError, InvalidArgumentError, ScribeError
from scribe.limits import (
    CACHE_BYTES_DEFAULT,
    FRAME_PAYLOAD_BYTES_MAX,
    KEY_BYTES_MAX,
    SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MIN,
)
from scribe.raft.errors import RaftInvariantError
from scribe.raft.types import Entry, EntryType, HardState
from scribe.records import OP_CLEAR, OP_DELETE, OP_PUT, OPS, encode_leaf_data

from . import fileio
from .base import HASHES_FILE, Engine, _sha256
from .format import FLAG_COMMIT, FRAME_HEAD, FRAME_HEAD_BYTES, PAYLOAD_HEAD, U32
from .leafstore import LeafHashes
from .segfiles import SegmentFile, open_data_dir, segment_names, valid_frame_follows

log = logging.getLogger("scribe.raftlog")

LOG_MAGIC = b"SCRIBLOG"
LOG_VERSION = 1
LOG_SUFFIX = ".rlog"
_SEG_HEAD = struct.Struct(">8sII")
SEG_HEADER_BYTES = _SEG_HEAD.size
_ENTRY_HEAD = struct.Struct(">QQB")  # term, index, type
ENTRY_HEAD_BYTES = _ENTRY_HEAD.size  # 17
_OPS_HEAD = struct.Struct(">BQI")  # version, ts_ms, count
OPS_VERSION = 1
_OP_HEAD = struct.Struct(">BI")  # op, len(key)
# Leaf hash input up to the operation's own bytes: 0x00 (RFC 9162 leaf), u64 seq, u64 ts_ms.
_LEAF_PREFIX = struct.Struct(">BQQ")
_STATE = struct.Struct(">QQQQ")  # generation, term, vote, commit
_STATE_SLOT_BYTES = 64
STATE_FILE = "raft.state"
OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
COMMIT_PERSIST_INTERVAL_S = 1.0
LEAF_HASHES_PERSIST_INTERVAL_S = 1.0
# Recent entries kept in memory so replication to followers rarely reads the disk.
TAIL_CACHE_ENTRIES_MAX = 8192
TAIL_CACHE_BYTES_MAX = 64 * 1024 * 1024
OPS_PER_ENTRY_MAX = 100_000


def encode_ops(ts_ms: int, ops) -> bytes:
    """The data of a NORMAL entry: a batch of (op, key, value) stamped with the leader's ts_ms."""
    parts = [_OPS_HEAD.pack(OPS_VERSION, ts_ms, len(ops))]
    for op, key, value in ops:
        if op not in OPS:
            raise InvalidArgumentError(f"unknown op {op}")
        parts.append(_OP_HEAD.pack(op, len(key)))
        parts.append(key)
        parts.append(U32.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def _check_leaf_layout() -> None:
    """_apply_ops hashes an operation's bytes in place as the tail of its leaf_data: refuse to load
    if scribe.records' leaf layout and the operation layout here ever stop agreeing."""
    op_bytes = encode_ops(9, [(OP_PUT, b"key", b"value")])[_OPS_HEAD.size :]
    if _LEAF_PREFIX.pack(0, 7, 9)[1:] + op_bytes != encode_leaf_data(
        7, 9, OP_PUT, b"key", b"value"
    ):
        raise ImportError("engines.raftlog: operation bytes are no longer the tail of leaf_data")


_check_leaf_layout()


def decode_ops(data) -> tuple[int, list[tuple[int, bytes, bytes, int]]]:
    """data -> (ts_ms, [(op, key, value, offset of the op in data), ...]); raises CorruptionError."""
    if len(data) < _OPS_HEAD.size:
        raise CorruptionError("entry data too short for an operations batch")
    version, ts_ms, count = _OPS_HEAD.unpack_from(data, 0)
    if version != OPS_VERSION or count > OPS_PER_ENTRY_MAX:
        raise CorruptionError(f"unknown operations batch version {version} or count {count}")
    out = []
    pos = _OPS_HEAD.size
    n = len(data)
    for _ in range(count):
        if pos + 5 > n:
            raise CorruptionError("operations batch ends inside an operation")
        op, klen = _OP_HEAD.unpack_from(data, pos)
        kstart = pos + 5
        if op not in OPS or klen > KEY_BYTES_MAX or kstart + klen + 4 > n:
            raise CorruptionError(f"impossible operation (op {op}, key length {klen})")
        (vlen,) = U32.unpack_from(data, kstart + klen)
        vstart = kstart + klen + 4
        if vstart + vlen > n:
            raise CorruptionError("operation value runs past the entry")
        out.append(
            (op, bytes(data[kstart : kstart + klen]), bytes(data[vstart : vstart + vlen]), pos)
        )
        pos = vstart + vlen
    if pos != n:
        raise CorruptionError("trailing bytes after the operations batch")
    return ts_ms, out


def _seg_header() -> bytes:
    head = LOG_MAGIC + struct.pack(">I", LOG_VERSION)
    return head + struct.pack(">I", crc32c(head))


def _check_seg_header(data: bytes) -> str | None:
    if len(data) < SEG_HEADER_BYTES:
        return "log segment header is incomplete"
    magic, version, crc = _SEG_HEAD.unpack_from(data, 0)
    if magic != LOG_MAGIC or crc != crc32c(data[:12]):
        return "log segment header is damaged"
    if version != LOG_VERSION:
        return f"unsupported log segment version {version}"
    return None


class LedgerLog(Engine):
    """The node's storage: a scribe.raft.RaftStorage whose applied entries form the ledger."""

    def __init__(
        self,
        path: str,
        *,
        segment_bytes: int = SEGMENT_BYTES_DEFAULT,
        cache_bytes_max: int = CACHE_BYTES_DEFAULT,
    ):
        super().__init__(cache_bytes_max=cache_bytes_max)
        if segment_bytes < SEGMENT_BYTES_MIN:
            raise InvalidArgumentError(f"segment_size must be at least {SEGMENT_BYTES_MIN} bytes")
        self._dir = os.path.abspath(path)
        self._segment_bytes = segment_bytes
        self._segs: list[SegmentFile] = []
        self._terms = array("Q")  # term of entry i at position i - 1
        self._entry_pos = array("Q")  # (segment index << 40) | frame offset of entry i
        self._tail: OrderedDict[int, Entry] = OrderedDict()
        self._tail_bytes = 0
        self._wbuf = bytearray()
        self._written = 0
        self._active_fd = -1
        self._dirty_fds: set[int] = set()
        self._retired_fds: list[int] = []
        self._dir_dirty = False
        # Per ledger record (seq): the entry holding it, the op's offset in the entry data, prev seq.
        self._rec_index = array("Q")
        self._rec_off = array("I")
        self._rec_prev = array("q")
        self._applied = 0
        self._hard = HardState()
        self._hard_persisted = HardState()
        self._hard_gen = 0
        self._commit_persisted_at = 0.0
        self._leaves_persisted_at = 0.0
        self._state_fd = -1
        self._leaf_store: LeafHashes | None = None
        self._trusted_count = 0
        self._lock_fd = -1
        self._dir, self._lock_fd = open_data_dir(self._dir)
        try:
            self._open()
        except BaseException:
            self._close_storage()
            raise

    # ---- open ------------------------------------------------------------------------------

    def _open(self) -> None:
        names = segment_names(self._dir, LOG_SUFFIX, SEG_HEADER_BYTES, _check_seg_header)
        expected = 1
        for i, name in enumerate(names):
            try:
                first = int(name[: -len(LOG_SUFFIX)])
            except ValueError:
                raise CorruptionError(f"unexpected log segment name {name}", self._dir) from None
            path = os.path.join(self._dir, name)
            if first != expected:
                raise CorruptionError(
                    f"log segment starts at index {first}, expected {expected}", path
                )
            expected = self._load_segment(i, path, first, is_last=i == len(names) - 1)
        if not names:
            self._new_segment(1)
        else:
            self._active_fd = fileio.open_append(self._segs[-1].path)
            self._written = os.lseek(self._active_fd, 0, os.SEEK_END)
        self._load_state()
        self._load_hashes_and_replay()

    def _load_segment(self, idx: int, path: str, first: int, is_last: bool) -> int:
        read_fd = fileio.open_read(path)
        self._segs.append(SegmentFile(first, path, read_fd))
        data = fileio.read_file(path)
        problem = _check_seg_header(data)
        if problem:
            raise CorruptionError(problem, path, 0)
        mv = memoryview(data)
        off = SEG_HEADER_BYTES
        n = len(data)
        index = first
        bits = idx << OFFSET_BITS
        while off < n:
            bad = None
            if n - off < FRAME_HEAD_BYTES:
                bad = "incomplete entry header"
            else:
                plen, crc = FRAME_HEAD.unpack_from(data, off)
                end = off + FRAME_HEAD_BYTES + plen
                if plen < ENTRY_HEAD_BYTES or plen > FRAME_PAYLOAD_BYTES_MAX:
                    bad = f"impossible entry length {plen}"
                elif end > n:
                    bad = "entry runs past the end of the segment"
                elif crc32c(mv[off + FRAME_HEAD_BYTES : end]) != crc:
                    bad = "entry checksum mismatch"
            if bad is None:
                term, eindex, etype = _ENTRY_HEAD.unpack_from(data, off + FRAME_HEAD_BYTES)
                if (
                    eindex != index
                    or etype not in (0, 1, 2)
                    or (self._terms and term < self._terms[-1])
                ):
                    raise CorruptionError(
                        f"impossible entry (index {eindex} where {index} belongs, type {etype}, term {term})",
                        path,
                        off,
                    )
                self._terms.append(term)
                self._entry_pos.append(bits | off)
                index += 1
                off = end
                continue
            if not is_last or valid_frame_follows(
                data, off, index, FRAME_HEAD_BYTES + 8, ENTRY_HEAD_BYTES
            ):
                raise CorruptionError(bad, path, off)
            log.warning("%s: torn tail of %d bytes after offset %d truncated", path, n - off, off)
            fileio.truncate(path, off)
            break
        return index

    def _load_state(self) -> None:
        path = os.path.join(self._dir, STATE_FILE)
        best = None
        if os.path.exists(path):
            data = fileio.read_file(path)
            for slot in range(2):
                chunk = data[slot * _STATE_SLOT_BYTES : slot * _STATE_SLOT_BYTES + _STATE.size + 4]
                if len(chunk) < _STATE.size + 4:
                    continue
                (crc,) = U32.unpack_from(chunk, _STATE.size)
                if crc32c(chunk[: _STATE.size]) != crc:
                    continue
                gen, term, vote, commit = _STATE.unpack_from(chunk, 0)
                if best is None or gen > best[0]:
                    best = (gen, term, vote, commit)
            if best is None and data:
                raise CorruptionError("both hard state slots are damaged", path)
        else:
            self._dir_dirty = True
        self._state_fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if best is not None:
            gen, term, vote, commit = best
            # The log may have lost a torn tail the state never depended on; commit can't exceed it.
            self._hard = HardState(term, vote, min(commit, self.last_index()))
            self._hard_gen = gen
        self._hard_persisted = self._hard

    def _load_hashes_and_replay(self) -> None:
        path = os.path.join(self._dir, HASHES_FILE)
        if not os.path.exists(path):
            self._dir_dirty = True
        store = LeafHashes(path)
        self._leaf_store = self._leaf_hashes = store
        trusted = len(store) // 32
        store.truncate(trusted * 32)  # a torn last hash
        self._trusted_count = trusted  # hashes already in the file: replay does not recompute them
        commit = self._hard.commit
        lo = 1
        while lo <= commit:
            batch = self.entries(lo, min(commit, lo + 1023) + 1, 1 << 62)
            self.apply_entries(batch)
            lo += len(batch)
        self._trusted_count = 0
        if (
            trusted > self._next_seq
        ):  # hashes of records applied before a crash, not yet committed here
            store.truncate(self._next_seq * 32)
        self._spot_check_hashes(path, min(trusted, self._next_seq))

    # ---- RaftStorage -----------------------------------------------------------------------

    def hard_state(self) -> HardState:
        return self._hard

    def first_index(self) -> int:
        return 1

    def last_index(self) -> int:
        return len(self._terms)

    def term(self, index: int) -> int:
        if index == 0:
            return 0
        if not 1 <= index <= len(self._terms):
            raise RaftInvariantError(f"term({index}) outside [0, {len(self._terms)}]")
        return self._terms[index - 1]

    def entries(self, lo: int, hi: int, max_bytes: int) -> list[Entry]:
        with self._lock:
            if lo < 1 or hi > len(self._terms) + 1 or lo > hi:
                raise RaftInvariantError(f"entries[{lo}, {hi}) outside [1, {len(self._terms) + 1})")
            out = []
            total = 0
            for i in range(lo, hi):
                e = self._entry(i)
                total += ENTRY_HEAD_BYTES + 4 + len(e.data)
                if total > max_bytes and out:
                    break
                out.append(e)
            return out

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard = hard_state

    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            self._check_open()
            first = entries[0].index
            last = len(self._terms)
            if first < 1 or first > last + 1:
                raise RaftInvariantError(f"append at {first} leaves a gap after {last}")
            if first <= self._applied:
                raise RaftInvariantError(
                    f"append at {first} would overwrite applied entry {self._applied}"
                )
            if first <= last:
                self._truncate_from(first)
            for e in entries:
                if e.index != len(self._terms) + 1:
                    raise RaftInvariantError("append: entries are not consecutive")
                if self._written + len(self._wbuf) >= self._segment_bytes:
                    self._roll(e.index)
                payload = _ENTRY_HEAD.pack(e.term, e.index, e.type) + e.data
                self._entry_pos.append(
                    ((len(self._segs) - 1) << OFFSET_BITS) | (self._written + len(self._wbuf))
                )
                self._wbuf += FRAME_HEAD.pack(len(payload), crc32c(payload))
                self._wbuf += payload
                self._terms.append(e.term)
                self._remember(e)

    def _remember(self, e: Entry) -> None:
        self._tail[e.index] = e
        self._tail_bytes += len(e.data)
        while self._tail and (
            len(self._tail) > TAIL_CACHE_ENTRIES_MAX or self._tail_bytes > TAIL_CACHE_BYTES_MAX
        ):
            _, old = self._tail.popitem(last=False)
            self._tail_bytes -= len(old.data)

    def _truncate_from(self, first: int) -> None:
        """Drop entries >= first (a leader overwrote a conflicting, uncommitted tail)."""
        pos = self._entry_pos[first - 1]
        idx, off = pos >> OFFSET_BITS, pos & OFFSET_MASK
        while len(self._segs) - 1 > idx:  # whole later segments go
            seg = self._segs.pop()
            fileio.close(seg.read_fd)
            # The file goes: nothing of it needs an fsync, and its descriptor is closed at the
            # next sync, which must not fsync it after closing it.
            self._dirty_fds.discard(self._active_fd)
            self._retired_fds.append(self._active_fd)
            self._active_fd = -1  # retired: never closed twice if the next open fails
            fileio.remove(seg.path)
            self._active_fd = fileio.open_append(self._segs[-1].path)
            self._written = os.lseek(self._active_fd, 0, os.SEEK_END)
            self._wbuf = bytearray()
            self._dir_dirty = True
        if off >= self._written:
            del self._wbuf[off - self._written :]
        else:
            self._wbuf = bytearray()
            os.ftruncate(self._active_fd, off)
            os.lseek(self._active_fd, off, os.SEEK_SET)  # the fd writes at its offset, not at EOF
            self._written = off
            self._dirty_fds.add(self._active_fd)
        del self._terms[first - 1 :]
        del self._entry_pos[first - 1 :]
        for i in [i for i in self._tail if i >= first]:
            self._tail_bytes -= len(self._tail.pop(i).data)

    def _roll(self, first_index: int) -> None:
        self._spill()
        fileio.fsync(self._active_fd)
        self._dirty_fds.discard(self._active_fd)
        self._retired_fds.append(self._active_fd)
        self._active_fd = -1  # retired: never closed twice if the next open fails
        self._new_segment(first_index)

    def _new_segment(self, first_index: int) -> None:
        path = os.path.join(self._dir, f"{first_index:020d}{LOG_SUFFIX}")
        fd = fileio.open_append(path)
        fileio.write_all(fd, _seg_header())
        self._segs.append(SegmentFile(first_index, path, fileio.open_read(path)))
        self._active_fd = fd
        self._written = SEG_HEADER_BYTES
        self._dirty_fds.add(fd)
        self._dir_dirty = True

    def _spill(self) -> None:
        if self._wbuf:
            fileio.write_all(self._active_fd, self._wbuf)
            self._written += len(self._wbuf)
            self._wbuf = bytearray()
            self._dirty_fds.add(self._active_fd)

    def _sync(self) -> None:
        with self._lock:
            retired = self._retired_fds
            while retired:  # popped first: a close that raises is never repeated by close()
                fileio.close(retired.pop())
            self._spill()
            now = time.monotonic()
            if now - self._leaves_persisted_at >= LEAF_HASHES_PERSIST_INTERVAL_S:
                self._leaves_persisted_at = now
                if self._leaf_store is not None and self._leaf_store.write_tail():
                    self._dirty_fds.add(self._leaf_store.fd)
            fds = list(self._dirty_fds)
            self._dirty_fds.clear()
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            hard = self._hard
        for fd in fds:  # the log first: a durable hard state never commits a non-durable entry
            fileio.fdatasync(fd)
        if dir_dirty:
            fileio.fsync_dir(self._dir)
        self._persist_hard_state(hard)

    def _persist_hard_state(self, hard: HardState) -> None:
        old = self._hard_persisted
        if hard == old:
            return
        now = time.monotonic()
        if (hard.term, hard.vote) == (old.term, old.vote) and now - self._commit_persisted_at < (
            COMMIT_PERSIST_INTERVAL_S
        ):
            return  # only the commit index moved: it may lag (see the module docstring)
        self._hard_gen += 1
        body = _STATE.pack(self._hard_gen, hard.term, hard.vote, hard.commit)
        slot = self._hard_gen % 2
        os.pwrite(self._state_fd, body + U32.pack(crc32c(body)), slot * _STATE_SLOT_BYTES)
        fileio.fsync(self._state_fd)
        self._hard_persisted = hard
        self._commit_persisted_at = now

    def _entry(self, index: int) -> Entry:
        e = self._tail.get(index)
        if e is not None:
            return e
        payload = self._entry_payload(index)
        term, eindex, etype = _ENTRY_HEAD.unpack_from(payload, 0)
        return Entry(term, eindex, etype, bytes(payload[ENTRY_HEAD_BYTES:]))

    def _entry_payload(self, index: int) -> bytes:
        pos = self._entry_pos[index - 1]
        idx, off = pos >> OFFSET_BITS, pos & OFFSET_MASK
        if idx == len(self._segs) - 1 and off >= self._written:
            rel = off - self._written
            (plen,) = U32.unpack_from(self._wbuf, rel)
            return bytes(self._wbuf[rel + FRAME_HEAD_BYTES : rel + FRAME_HEAD_BYTES + plen])
        seg = self._segs[idx]
        head = fileio.pread(seg.read_fd, FRAME_HEAD_BYTES, off)
        if len(head) < FRAME_HEAD_BYTES:
            raise CorruptionError(f"entry {index} is missing from its segment", seg.path, off)
        plen, crc = FRAME_HEAD.unpack(head)
        payload = fileio.pread(seg.read_fd, plen, off + FRAME_HEAD_BYTES)
        if len(payload) != plen or crc32c(payload) != crc:
            raise CorruptionError(f"entry {index} fails its checksum", seg.path, off)
        return payload

    # ---- the state machine -----------------------------------------------------------------

    @property
    def applied_index(self) -> int:
        return self._applied

    def apply_entries(self, entries: list[Entry]) -> list[tuple[int, int, int]]:
        """Apply committed entries in order; (index, first_seq, last_seq) of each NORMAL entry."""
        results = []
        with self._lock:
            self._check_open()
            for e in entries:
                if e.index != self._applied + 1:
                    raise ScribeError(
                        f"apply of entry {e.index} after {self._applied}: out of order"
                    )
                if e.type == EntryType.NORMAL and e.data:
                    first = self._next_seq
                    try:
                        self._apply_ops(e)
                    except CorruptionError as exc:
                        self._failed = exc  # state may be half-applied: refuse everything after
                        raise
                    results.append((e.index, first, self._next_seq - 1))
                self._applied = e.index
                if e.index > self._hard.commit:
                    # Applying implies committed; keep the hard state honest for the next persist.
                    self._hard = self._hard._replace(commit=e.index)
        return results

    def _apply_ops(self, e: Entry) -> None:
        # The hottest loop of a node (every replica runs it for every record): one pass decodes,
        # hashes and indexes each operation (decode_ops is the same parse for readers); state
        # lives in locals and goes back to self once at the end. A corrupt operation raises
        # midway: apply_entries then marks the log failed, so nothing half-applied is served.
        # Values are cached when first read, not here: a write's value already sits in the
        # entry tail kept for replication, and inserting every record into a dict of millions
        # cost a sixth of this loop (and the RAM of values nobody reads).
        data = e.data
        if type(data) is not bytes:
            data = bytes(data)  # keys are slices of it and must be bytes
        n = len(data)
        if n < _OPS_HEAD.size:
            raise CorruptionError("entry data too short for an operations batch")
        version, ts, count = _OPS_HEAD.unpack_from(data, 0)
        if version != OPS_VERSION or count > OPS_PER_ENTRY_MAX:
            raise CorruptionError(f"unknown operations batch version {version} or count {count}")
        index = e.index
        if ts > self._last_ts_ms:
            self._last_ts_ms = ts
        latest, cache, unsorted = self._latest, self._cache, self._unsorted
        get = latest.get
        trusted_count = self._trusted_count
        seq, live, clear_seq = self._next_seq, self._live, self._clear_seq
        op_head, value_len = _OP_HEAD.unpack_from, U32.unpack_from
        leaf_prefix, sha256 = _LEAF_PREFIX.pack, _sha256
        offsets, prevs, hashes = [], [], []
        pos = _OPS_HEAD.size
        try:
            for _ in range(count):
                op, klen = op_head(data, pos)
                kend = pos + 5 + klen
                vstart = kend + 4
                end = vstart + value_len(data, kend)[0]
                if end > n or klen > KEY_BYTES_MAX:
                    raise CorruptionError(f"impossible operation (op {op}, key length {klen})")
                key = data[pos + 5 : kend]
                offsets.append(pos)
                if seq >= trusted_count:
                    # An operation's bytes (u8 op | u32 klen | key | u32 vlen | value) are the
                    # tail of its record's leaf_data (DESIGN §2).
                    hashes.append(sha256(leaf_prefix(0, seq, ts) + data[pos:end]).digest())
                if op == OP_PUT:
                    prev = get(key)
                    latest[key] = seq
                    if prev is None:
                        unsorted.append(key)
                        prevs.append(-1)
                        live += 1
                    else:
                        if prev >= 0:
                            prevs.append(prev)
                            live += prev <= clear_seq  # live again only if a clear hid it
                        else:  # deleted (~seq): not live
                            prevs.append(~prev)
                            live += 1
                        cache.pop(key, None)  # a read may have cached the older value
                elif op == OP_DELETE:
                    prev = get(key)
                    latest[key] = ~seq
                    if prev is None:
                        unsorted.append(key)
                        prevs.append(-1)
                    elif prev >= 0:
                        prevs.append(prev)
                        live -= prev > clear_seq
                    else:
                        prevs.append(~prev)
                    cache.pop(key, None)
                elif op == OP_CLEAR:
                    prevs.append(-1)
                    clear_seq = seq
                    self._clear_seqs.append(seq)
                    live = 0
                    cache.clear()
                    self._cache_bytes = 0
                else:
                    raise CorruptionError(f"impossible operation (op {op}, key length {klen})")
                seq += 1
                pos = end
        except struct.error:
            raise CorruptionError("operations batch ends inside an operation") from None
        if pos != n:
            raise CorruptionError("trailing bytes after the operations batch")
        self._rec_index.extend(repeat(index, count))
        self._rec_off.extend(offsets)
        self._rec_prev.extend(prevs)
        self._next_seq, self._live, self._clear_seq = seq, live, clear_seq
        if hashes:
            self._leaf_hashes += b"".join(hashes)  # one append (and one lock) per entry

    # ---- reads (engines.base.Engine primitives) ------------------------------------------------

    def _read_payload(self, seq: int) -> bytes:
        """The record in the segment engine's payload layout, rebuilt from the entry holding it."""
        if not 0 <= seq < len(self._rec_index):
            raise CorruptionError(f"no record with seq {seq}")
        index = self._rec_index[seq]
        e = self._entry(index)
        data = e.data
        off = self._rec_off[seq]
        op, klen = _OP_HEAD.unpack_from(data, off)
        kstart = off + 5
        (vlen,) = U32.unpack_from(data, kstart + klen)
        vstart = kstart + klen + 4
        ts = _OPS_HEAD.unpack_from(data, 0)[1]  # the entry's stamp: every record shares it
        prev = self._rec_prev[seq]
        return (
            PAYLOAD_HEAD.pack(prev + 1, FLAG_COMMIT, 0, seq, ts, op, klen)
            + data[kstart : kstart + klen]
            + U32.pack(vlen)
            + data[vstart : vstart + vlen]
        )

    def _hash_pending(self) -> None:
        """Leaf hashes are computed as entries are applied: nothing is ever pending."""

    def _store(self, frames, keys, ops) -> None:
        raise ScribeError("a LedgerLog is written through Raft: propose, then apply_entries")

    def _make_put(self, value_bytes_max=0, slow=None):
        def put(key, value):
            raise ScribeError("a LedgerLog is written through Raft: propose, then apply_entries")

        return put

    def apply(self, ops):
        raise ScribeError("a LedgerLog is written through Raft: propose, then apply_entries")

    def clear(self):
        raise ScribeError("a LedgerLog is written through Raft: propose, then apply_entries")

    # ---- closing ---------------------------------------------------------------------------

    def _before_close(self) -> None:
        # A clean stop writes every leaf hash, so the next open recomputes none.
        if self._leaf_store is not None and self._leaf_store.write_tail():
            fileio.fsync(self._leaf_store.fd)
        # A clean stop persists the exact commit index, so the next open replays everything committed.
        self._commit_persisted_at = 0.0
        self._persist_hard_state(self._hard)

    def _close_storage(self) -> None:
        for fd in [self._active_fd, self._state_fd, *self._retired_fds]:
            if fd >= 0:
                fileio.close(fd)
        self._active_fd = self._state_fd = -1
        if self._leaf_store is not None:
            self._leaf_store.close()
        self._retired_fds = []
        for seg in self._segs:
            fileio.close(seg.read_fd)
        self._segs = []
        if self._lock_fd >= 0:
            fileio.unlock_dir(self._lock_fd)
            self._lock_fd = -1

    @property
    def path(self) -> str:
        return self._dir
