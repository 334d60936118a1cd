"""The durable engine: append-only CRC-32C segment files, a sorted in-memory index, hint files.

Layout of a data directory:

    00000000000000000000.seg   segments; the name is the seq of the first record; lexical order = log order
    00000000000000000000.hint  hint of a sealed (or cleanly closed) segment, see hint.py
    leaves.hashes              Merkle leaf hash of every record, 32 bytes each, in seq order
    LOCK                       advisory lock: one process per directory

Writes go to an in-memory buffer and reach the file in one write per sync (or when the buffer grows past
WRITE_BUFFER_BYTES_MAX); sync() then fsyncs every touched file and, when files were created, the directory.
Each record's position is one u64 in an array indexed by seq: (segment index << 40) | byte offset.

Recovery (at open): every segment but the last must parse completely. In the last one, a frame that is
incomplete, fails its checksum or is zero is a torn tail when no valid frame follows it: the tail is
truncated back to the end of the last complete atomic group and the cut is logged. When a valid frame does
follow, the damage is in the middle of the log, and open raises CorruptionError naming file and offset.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from array import array

from crc32c import crc32c

from scribe.errors import CorruptionError
from scribe.limits import (
    CACHE_BYTES_DEFAULT,
    FRAME_PAYLOAD_BYTES_MAX,
    SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MIN,
    WRITE_BUFFER_BYTES_MAX,
)
from scribe.records import OP_CLEAR, OP_PUT, OPS

from . import fileio
from .base import HASHES_FILE, Engine, leaf_hash_of_payload
from .format import (
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
    segment_header,
    segment_name,
)
from .hint import HINT_SUFFIX, decode_hint, encode_hint
from .leafstore import LeafHashes
from .segfiles import SegmentFile, open_data_dir, segment_names, valid_frame_follows

log = logging.getLogger("scribe.engine")

OFFSET_BITS = 40
OFFSET_MASK = (1 << OFFSET_BITS) - 1
HASH_BYTES = 32
_U64 = struct.Struct(">Q")
_frame_head_unpack = FRAME_HEAD.unpack_from
_sha256 = hashlib.sha256
# Where 0x00 || leaf_data (the leaf hash input) starts, counted from the frame start.
_HASH_IN_FRAME = FRAME_HEAD_BYTES + LEAF_HASH_INPUT_OFFSET
_FOLLOW_SEARCH_HITS_MAX = 10_000


class SegmentEngine(Engine):
    def __init__(
        self,
        path: str,
        *,
        segment_bytes: int = SEGMENT_BYTES_DEFAULT,
        cache_bytes_max: int = CACHE_BYTES_DEFAULT,
    ):
        super().__init__(cache_bytes_max=cache_bytes_max)
        if segment_bytes < SEGMENT_BYTES_MIN:
            raise ValueError(f"segment_size must be at least {SEGMENT_BYTES_MIN} bytes")
        self._dir = os.path.abspath(path)
        self._segment_bytes = segment_bytes
        self._segments: list[SegmentFile] = []
        self._positions = array("Q")
        self._wbuf = bytearray()
        self._written = 0  # bytes of the active segment already handed to the OS
        self._active_fd = -1
        self._active_bits = 0
        self._act_ops = bytearray()
        self._act_keys: list[bytes] = []
        self._dirty_fds: set[int] = set()
        self._retired_fds: list[int] = []
        self._dir_dirty = False
        self._leaf_store: LeafHashes | None = None
        self._lock_fd = -1

        self._dir, self._lock_fd = open_data_dir(self._dir)
        try:
            self._open()
        except BaseException:
            self._close_storage()
            raise

    # ---- open and recovery ------------------------------------------------------------------

    def _open(self) -> None:
        for n in fileio.listdir(self._dir):
            if n.endswith(".tmp"):  # an interrupted atomic write: the old file is still valid
                fileio.remove(os.path.join(self._dir, n))
        names = segment_names(self._dir, SEGMENT_SUFFIX, SEGMENT_HEADER_BYTES, check_segment_header)
        expected = 0
        for i, name in enumerate(names):
            try:
                base = int(name[: -len(SEGMENT_SUFFIX)])
            except ValueError:
                raise CorruptionError(f"unexpected segment file name {name}", self._dir) from None
            path = os.path.join(self._dir, name)
            if base != expected:
                raise CorruptionError(
                    f"segment starts at seq {base} but the previous segment ends at {expected}",
                    path,
                )
            expected = self._load_segment(i, base, path, is_last=i == len(names) - 1)
        self._next_seq = expected
        if not names:
            self._new_segment()
        else:
            last = self._segments[-1]
            self._active_fd = fileio.open_append(last.path)
            self._written = os.lseek(self._active_fd, 0, os.SEEK_END)
            self._active_bits = (len(self._segments) - 1) << OFFSET_BITS
        self._finish_index()
        self._open_hashes()

    def _load_segment(self, idx: int, base: int, path: str, is_last: bool) -> int:
        read_fd = fileio.open_read(path)
        self._segments.append(SegmentFile(base, path, read_fd))
        size = os.fstat(read_fd).st_size
        head = fileio.pread(read_fd, SEGMENT_HEADER_BYTES, 0)
        problem = check_segment_header(head)
        if problem:
            raise CorruptionError(problem, path, 0)
        bits = idx << OFFSET_BITS
        start, seq = SEGMENT_HEADER_BYTES, base
        ops, keys = bytearray(), []
        hint_path = path[: -len(SEGMENT_SUFFIX)] + HINT_SUFFIX
        hint = self._read_hint(hint_path, read_fd, size, base)
        if hint is not None:
            self._apply_hint(hint, bits)
            start, seq = hint.covered_bytes, base + len(hint.ops)
            ops += hint.ops
            keys += hint.keys
        if start < size or not is_last:
            data = fileio.pread(read_fd, size - start, start) if start < size else b""
            good_end, seq = self._scan(data, start, seq, bits, path, is_last, ops, keys)
            if good_end < size:
                if not is_last:
                    raise CorruptionError("unexpected bytes after the last record", path, good_end)
                log.warning(
                    "%s: torn tail of %d bytes after offset %d truncated (records from seq %d on were"
                    " never acknowledged as durable)",
                    path,
                    size - good_end,
                    good_end,
                    seq,
                )
                fileio.truncate(path, good_end)
        if is_last:
            self._act_ops, self._act_keys = ops, keys
        return seq

    def _read_hint(self, hint_path: str, read_fd: int, size: int, base: int):
        if not os.path.exists(hint_path):
            return None
        hint = decode_hint(fileio.read_file(hint_path))
        fresh = (
            hint is not None
            and hint.base_seq == base
            and SEGMENT_HEADER_BYTES <= hint.covered_bytes <= size
            and (
                not hint.ops
                or _frame_head_unpack(
                    fileio.pread(read_fd, FRAME_HEAD_BYTES, hint.last_frame_offset)
                )[1]
                == hint.last_frame_crc
            )
        )
        if not fresh:
            log.warning("%s is stale or damaged: rebuilding the index from the segment", hint_path)
            fileio.remove(hint_path)
            return None
        return hint

    def _apply_hint(self, hint, bits: int) -> None:
        self._positions.extend([bits | o for o in hint.offsets])
        base = hint.base_seq
        ops = hint.ops
        self._latest.update(
            zip(
                hint.keys,
                [
                    s if op == OP_PUT else ~s
                    for s, op in zip(range(base, base + len(ops)), ops, strict=True)
                ],
                strict=True,
            )
        )
        i = ops.find(OP_CLEAR)
        while i >= 0:
            self._clear_seqs.append(base + i)
            i = ops.find(OP_CLEAR, i + 1)

    def _scan(self, data, start, seq, bits, path, is_last, ops_out, keys_out):
        """Parse frames of data (segment bytes from offset start); returns (good_end, next seq)."""
        mv = memoryview(data)
        n = len(data)
        off = 0
        good_end = 0
        group: list[tuple[int, int, bytes]] = []
        latest = self._latest
        positions = self._positions
        while off < n:
            bad = None
            if n - off < FRAME_HEAD_BYTES:
                bad = "incomplete frame header"
            else:
                plen, crc = _frame_head_unpack(data, off)
                end = off + FRAME_HEAD_BYTES + plen
                if plen < PAYLOAD_BYTES_MIN or plen > FRAME_PAYLOAD_BYTES_MAX:
                    bad = f"impossible record length {plen}"
                elif end > n:
                    bad = "record runs past the end of the segment"
                elif crc32c(mv[off + FRAME_HEAD_BYTES : end]) != crc:
                    bad = "record checksum mismatch"
            if bad is None:
                prev1, flags, zero, rseq, _ts, op, klen = PAYLOAD_HEAD.unpack_from(
                    data, off + FRAME_HEAD_BYTES
                )
                kstart = off + FRAME_HEAD_BYTES + PAYLOAD_HEAD_BYTES
                impossible = None
                if rseq != seq:
                    impossible = f"record holds seq {rseq} where seq {seq} belongs"
                elif op not in OPS or flags & ~FLAGS_KNOWN or zero:
                    impossible = f"record has unknown op {op} or flags {flags}"
                elif (
                    kstart + klen + 4 > end
                    or kstart + klen + 4 + U32.unpack_from(data, kstart + klen)[0] != end
                ):
                    impossible = "record key and value lengths do not match its size"
                elif prev1 > rseq:
                    impossible = "record links to a later version"
                if impossible:
                    raise CorruptionError(impossible, path, start + off)
                key = data[kstart : kstart + klen]
                group.append((start + off, op, key))
                seq += 1
                off = end
                if flags & FLAG_COMMIT:
                    for foff, fop, fkey in group:
                        s = len(positions)
                        positions.append(bits | foff)
                        ops_out.append(fop)
                        keys_out.append(fkey)
                        if fop == OP_CLEAR:
                            self._clear_seqs.append(s)
                        else:
                            latest[fkey] = s if fop == OP_PUT else ~s
                    group = []
                    good_end = off
                continue
            if not is_last:
                raise CorruptionError(bad, path, start + off)
            if valid_frame_follows(data, off, seq, SEQ_OFFSET_IN_FRAME, PAYLOAD_BYTES_MIN):
                raise CorruptionError(
                    bad + " and valid records follow it (not a torn write)", path, start + off
                )
            break
        if group and not is_last:
            raise CorruptionError("segment ends inside an atomic batch", path, start + off)
        return start + good_end, seq - len(group)

    def _finish_index(self) -> None:
        self._latest.pop(b"", None)
        if self._clear_seqs:
            self._clear_seq = self._clear_seqs[-1]
        clear_seq = self._clear_seq
        self._live = sum(1 for s in self._latest.values() if s > clear_seq)
        self._unsorted.extend(self._latest)
        if self._positions:
            last = self._read_payload(len(self._positions) - 1)
            self._last_ts_ms = PAYLOAD_HEAD.unpack_from(last, 0)[4]

    def _open_hashes(self) -> None:
        path = os.path.join(self._dir, HASHES_FILE)
        existed = os.path.exists(path)
        store = LeafHashes(path)
        self._leaf_store = store
        n = len(self._positions)
        keep = min(len(store) // HASH_BYTES, n)
        if len(store) != keep * HASH_BYTES:
            store.truncate(keep * HASH_BYTES)
        self._leaf_hashes = store
        self._spot_check_hashes(path, keep)
        for seq in range(keep, n):
            store += leaf_hash_of_payload(self._read_payload(seq))
        if not existed:
            self._dir_dirty = True

    # ---- writing ----------------------------------------------------------------------------

    def _new_segment(self) -> None:
        path = os.path.join(self._dir, segment_name(self._next_seq))
        fd = fileio.open_append(path)
        fileio.write_all(fd, segment_header())
        self._segments.append(SegmentFile(self._next_seq, path, fileio.open_read(path)))
        self._active_fd = fd
        self._written = SEGMENT_HEADER_BYTES
        self._active_bits = (len(self._segments) - 1) << OFFSET_BITS
        self._act_ops = bytearray()
        self._act_keys = []
        self._dirty_fds.add(fd)
        self._dir_dirty = True

    def _roll(self) -> None:
        self._spill()
        fileio.fsync(self._active_fd)
        self._dirty_fds.discard(self._active_fd)
        self._write_hint()
        # A sync running right now may still fsync this fd: close it at the next sync, not here.
        self._retired_fds.append(self._active_fd)
        self._active_fd = -1
        self._new_segment()

    def _write_hint(self) -> None:
        seg = self._segments[-1]
        count = len(self._act_keys)
        if count == 0:
            return
        first = len(self._positions) - count
        offsets = array("Q", [p & OFFSET_MASK for p in self._positions[first:]])
        last_off = offsets[-1]
        last_crc = _frame_head_unpack(fileio.pread(seg.read_fd, FRAME_HEAD_BYTES, last_off))[1]
        data = encode_hint(
            seg.first, self._written, last_off, last_crc, offsets, self._act_ops, self._act_keys
        )
        fileio.write_file_atomic(seg.path[: -len(SEGMENT_SUFFIX)] + HINT_SUFFIX, data)

    def _store(self, frames, keys, ops) -> None:
        if self._written + len(self._wbuf) >= self._segment_bytes and self._act_keys:
            self._roll()
        off = self._written + len(self._wbuf)
        bits = self._active_bits
        positions = self._positions
        if len(frames) == 1:
            positions.append(bits | off)
            self._wbuf += frames[0]
        else:
            for f in frames:
                positions.append(bits | off)
                off += len(f)
            self._wbuf += b"".join(frames)
        self._act_keys += keys
        self._act_ops += ops
        if len(self._wbuf) > WRITE_BUFFER_BYTES_MAX:
            self._spill()

    def _store_one(self, head, payload, key, op) -> None:
        wbuf = self._wbuf
        off = self._written + len(wbuf)
        if off >= self._segment_bytes and self._act_keys:
            self._roll()
            wbuf = self._wbuf
            off = self._written
        self._positions.append(self._active_bits | off)
        wbuf += head
        wbuf += payload
        self._act_keys.append(key)
        self._act_ops.append(op)
        if len(wbuf) > WRITE_BUFFER_BYTES_MAX:
            self._spill()

    def _store_parts(self, parts, keys, ops) -> None:
        if self._written + len(self._wbuf) >= self._segment_bytes and self._act_keys:
            self._roll()
        off = self._written + len(self._wbuf)
        bits = self._active_bits
        append = self._positions.append
        for i in range(1, len(parts), 2):
            append(bits | off)
            off += 8 + len(parts[i])
        self._wbuf += b"".join(parts)
        self._act_keys += keys
        self._act_ops += ops
        if len(self._wbuf) > WRITE_BUFFER_BYTES_MAX:
            self._spill()

    def _hash_pending(self) -> None:
        hashed = len(self._leaf_hashes) // HASH_BYTES
        n = len(self._positions)
        if hashed >= n:
            return
        # Every unhashed record is still in the write buffer: _spill hashes before it writes.
        # The frames of consecutive seqs are contiguous and end where the buffer ends, so each
        # record's hash input runs from its start + _HASH_IN_FRAME to the next record's start.
        base = self._written
        starts = [(p & OFFSET_MASK) - base for p in self._positions[hashed:n]]
        starts.append(len(self._wbuf))
        sha = _sha256
        with memoryview(self._wbuf) as mv:
            out = [
                sha(mv[a + _HASH_IN_FRAME : b]).digest()
                for a, b in zip(starts, starts[1:], strict=False)
            ]
        self._leaf_hashes += b"".join(out)

    def _spill(self) -> None:
        """Hand the write buffer to the OS (no fsync)."""
        if not self._wbuf:
            return
        self._hash_pending()
        fileio.write_all(self._active_fd, self._wbuf)
        self._written += len(self._wbuf)
        self._wbuf = bytearray()
        self._dirty_fds.add(self._active_fd)

    def _sync(self) -> None:
        # Called with _sync_lock held (Engine.sync / Engine.close).
        with self._lock:
            retired = self._retired_fds  # safe: no other sync runs, and these were fsynced at roll
            while retired:  # popped first: a close that raises is never repeated by close()
                fileio.close(retired.pop())
            self._spill()
            if self._leaf_store.write_tail():
                self._dirty_fds.add(self._leaf_store.fd)
            fds = list(self._dirty_fds)
            self._dirty_fds.clear()
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        # fsync outside the index lock: writers keep appending to the buffer meanwhile, and a
        # roll cannot close these fds because it happens under _lock only after its own fsync.
        for fd in fds:
            fileio.fsync(fd)
        if dir_dirty:
            fileio.fsync_dir(self._dir)

    def _before_close(self) -> None:
        self._write_hint()

    # ---- reading ----------------------------------------------------------------------------

    def _read_payload(self, seq: int) -> bytes:
        if not 0 <= seq < len(self._positions):
            raise CorruptionError(f"no record with seq {seq}")
        pos = self._positions[seq]
        off = pos & OFFSET_MASK
        idx = pos >> OFFSET_BITS
        if idx == len(self._segments) - 1 and off >= self._written:
            rel = off - self._written
            (plen,) = U32.unpack_from(self._wbuf, rel)
            return bytes(self._wbuf[rel + FRAME_HEAD_BYTES : rel + FRAME_HEAD_BYTES + plen])
        seg = self._segments[idx]
        chunk = fileio.pread(seg.read_fd, 512, off)
        if len(chunk) < FRAME_HEAD_BYTES:
            raise CorruptionError(f"record {seq} is missing from its segment", seg.path, off)
        plen, crc = _frame_head_unpack(chunk)
        if plen < PAYLOAD_BYTES_MIN or plen > FRAME_PAYLOAD_BYTES_MAX:
            raise CorruptionError(f"record {seq} has an impossible length {plen}", seg.path, off)
        if FRAME_HEAD_BYTES + plen > len(chunk):
            chunk = fileio.pread(seg.read_fd, FRAME_HEAD_BYTES + plen, off)
        payload = chunk[FRAME_HEAD_BYTES : FRAME_HEAD_BYTES + plen]
        if len(payload) != plen or crc32c(payload) != crc:
            raise CorruptionError(f"record {seq} fails its checksum", seg.path, off)
        return payload

    # ---- closing ----------------------------------------------------------------------------

    def _close_storage(self) -> None:
        if self._active_fd >= 0:
            fileio.close(self._active_fd)
        self._active_fd = -1
        if self._leaf_store is not None:
            self._leaf_store.close()
        for fd in self._retired_fds:
            fileio.close(fd)
        self._retired_fds = []
        for seg in self._segments:
            fileio.close(seg.read_fd)
        self._segments = []
        if self._lock_fd >= 0:
            fileio.unlock_dir(self._lock_fd)
            self._lock_fd = -1

    @property
    def path(self) -> str:
        return self._dir
