"""The engine interface and the key index every engine shares.

An engine stores the ledger's records (DESIGN §2) in seq order and keeps, in memory:

- `_latest`: key -> seq of its newest record (bitwise-inverted, so negative, when that record is a delete);
- `_cache`: key -> value of live keys, bounded by `cache_bytes_max` (insertion order = eviction order);
- a sorted list of every key ever written (sortedcontainers), merged lazily from `_unsorted` so the
  write path pays only a list append, and a scan pays one bulk merge;
- `_leaf_hashes`: the Merkle leaf hash of every record, 32 bytes each, filled lazily in batches.

A key is live when its newest record is a put that comes after the last clear. Subclasses store frames and
read them back by seq; everything else (seq assignment, timestamps, version chains, liveness, cache) lives here.
"""

from __future__ import annotations

import abc
import hashlib
import itertools
import random
import struct
import threading
import time
from collections.abc import Iterator

from crc32c import crc32c
from sortedcontainers import SortedList

from scribe.errors import ClosedError, CorruptionError, InvalidArgumentError, ScribeError
from scribe.limits import (
    CACHE_BYTES_DEFAULT,
    CACHE_ENTRY_FRACTION,
    KEY_BYTES_MAX,
    VALUE_BYTES_MAX_LIMIT,
)
from scribe.records import OP_CLEAR, OP_DELETE, OP_PUT, Record, Version

from .format import (
    FLAG_COMMIT,
    FRAME_HEAD,
    LEAF_HASH_INPUT_OFFSET,
    PAYLOAD_HEAD,
    PAYLOAD_HEAD_BYTES,
    U32,
    encode_frame,
)

_SCAN_CHUNK = 1024
HASHES_FILE = "leaves.hashes"
# Stored leaf hashes compared with their records at open: this many newest, and as many at random.
HASH_SPOT_CHECKS = 256
_payload_head_pack = PAYLOAD_HEAD.pack
_u32_pack = U32.pack
_frame_head_pack = FRAME_HEAD.pack
_sha256 = hashlib.sha256
_time_ns = time.time_ns


class _Closed:
    """Stands in for the cache after close, so the lock-free read path raises ClosedError for free."""

    def get(self, key, default=None):
        raise ClosedError("the ledger is closed")


CLOSED = _Closed()


def decode_payload(payload: bytes | memoryview, where: str = "", offset: int | None = None):
    """payload -> (prev_seq or None, Record). Raises CorruptionError on an impossible record."""
    if len(payload) < PAYLOAD_HEAD_BYTES + 4:
        raise CorruptionError("record payload too short", where, offset)
    prev1, flags, zero, seq, ts_ms, op, klen = PAYLOAD_HEAD.unpack_from(payload, 0)
    if zero:
        raise CorruptionError("record leaf prefix byte is not zero", where, offset)
    kend = PAYLOAD_HEAD_BYTES + klen
    if kend + 4 > len(payload):
        raise CorruptionError("record key length runs past the record", where, offset)
    (vlen,) = U32.unpack_from(payload, kend)
    if kend + 4 + vlen != len(payload):
        raise CorruptionError("record value length does not match the record size", where, offset)
    if op not in (OP_PUT, OP_DELETE, OP_CLEAR):
        raise CorruptionError(f"record has unknown op {op}", where, offset)
    key = bytes(payload[PAYLOAD_HEAD_BYTES:kend])
    value = bytes(payload[kend + 4 :])
    return (prev1 - 1 if prev1 else None), Record(seq, ts_ms, op, key, value)


class Engine(abc.ABC):
    """Shared index logic; subclasses implement storage of frames (see the abstract methods)."""

    def __init__(self, cache_bytes_max: int = CACHE_BYTES_DEFAULT):
        self._lock = threading.RLock()
        # Lock order: _sync_lock before _lock. One sync at a time; writers only take _lock.
        self._sync_lock = threading.Lock()
        self._latest: dict[bytes, int] = {}
        self._cache: dict[bytes, bytes] = {}
        self._cache_bytes = 0
        self._cache_bytes_max = cache_bytes_max
        self._cache_entry_max = cache_bytes_max // CACHE_ENTRY_FRACTION
        self._live = 0
        self._clear_seq = -1
        self._clear_seqs: list[int] = []
        self._sorted = SortedList()
        self._unsorted: list[bytes] = []
        self._next_seq = 0
        self._last_ts_ms = 0
        self._leaf_hashes = bytearray()
        self._closed = False
        self._failed: BaseException | None = None
        # put(key, value) -> seq for bytes within the limits; see _make_put.
        self.put = self._make_put()

    # ---- storage, implemented by subclasses -------------------------------------------------

    @abc.abstractmethod
    def _store(self, frames: list[bytes], keys: list[bytes], ops: bytes) -> None:
        """Append one atomic group of frames (consecutive seqs starting at self._next_seq)."""

    def _store_one(self, head: bytes, payload: bytes, key: bytes, op: int) -> None:
        """Append one record, given as frame head and payload, as a group of its own."""
        self._store_parts([head, payload], [key], bytes((op,)))

    def _store_parts(self, parts: list[bytes], keys: list[bytes], ops: bytes) -> None:
        """Like _store, with each frame given as two parts: its head and its payload."""
        self._store([parts[i] + parts[i + 1] for i in range(0, len(parts), 2)], keys, ops)

    @abc.abstractmethod
    def _read_payload(self, seq: int) -> bytes:
        """The payload of record `seq`, checksum-verified."""

    @abc.abstractmethod
    def _hash_pending(self) -> None:
        """Extend self._leaf_hashes to cover every stored record."""

    @abc.abstractmethod
    def _sync(self) -> None:
        """Make every stored record durable."""

    @abc.abstractmethod
    def _close_storage(self) -> None:
        """Release files; called once, after a final sync."""

    def _spot_check_hashes(self, path: str, stored: int) -> None:
        """Compare stored leaf hashes with their records: the newest ones and a random sample.

        leaves.hashes is derived data, trusted for fast open; this catches a segment edited behind
        its back (or a damaged hash file) at a cost of HASH_SPOT_CHECKS record reads, not a rehash.
        `scribe fsck` checks every record.
        """
        seqs = set(range(max(0, stored - HASH_SPOT_CHECKS), stored))
        seqs.update(random.sample(range(stored), min(HASH_SPOT_CHECKS, stored)))
        for seq in sorted(seqs):
            got = leaf_hash_of_payload(self._read_payload(seq))
            if got != self._leaf_hashes[32 * seq : 32 * (seq + 1)]:
                raise CorruptionError(
                    f"record {seq} does not match its leaf hash in {HASHES_FILE}"
                    " (the segment or the hash file was altered; run scribe fsck)",
                    path,
                    32 * seq,
                )

    def _before_close(self) -> None:  # noqa: B027 (optional hook)
        """Last words after the final sync (e.g. a hint file for fast reopen)."""

    # ---- the public engine interface ----------------------------------------------------------

    @property
    def cache(self) -> dict[bytes, bytes]:
        """The live-value cache, read lock-free by the ledger's get fast path."""
        return self._cache

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the ledger is closed")
        if self._failed is not None:
            raise ScribeError(f"storage failed earlier and refuses further writes: {self._failed}")

    def _timestamp(self) -> int:
        ts = _time_ns() // 1_000_000
        if (
            ts < self._last_ts_ms
        ):  # keep ledger time non-decreasing even if the wall clock steps back
            ts = self._last_ts_ms
        self._last_ts_ms = ts
        return ts

    def _cache_put(self, key: bytes, value: bytes) -> None:
        if len(value) <= self._cache_entry_max:
            self._cache[key] = value
            self._cache_bytes += len(value)
            if self._cache_bytes > self._cache_bytes_max:
                self._evict()

    def _evict(self) -> None:
        # _cache_bytes over-counts (overwrites and deletes are not subtracted, to keep the write path
        # cheap), so first count exactly; then drop the oldest entries in bulk: popping one at a time
        # from the front of a dict is quadratic.
        cache = self._cache
        self._cache_bytes = sum(map(len, cache.values()))
        while self._cache_bytes > self._cache_bytes_max and cache:
            n = max(1, len(cache) // 8)
            for k in list(itertools.islice(iter(cache), n)):
                self._cache_bytes -= len(cache.pop(k))

    def _make_put(self, value_bytes_max: int = VALUE_BYTES_MAX_LIMIT, slow=None):
        """Build `put(key, value) -> seq`: the hottest path of the library, as one closure.

        Containers never rebound after __init__ are cell variables, so a put skips a dozen
        attribute lookups (scalars stay on self). Arguments that are not plain bytes within the
        limits go to `slow(key, value)`, which converts or rejects them; without `slow` they raise.
        See apply() for the general, batched case.
        """
        lock = self._lock
        latest = self._latest
        latest_get = latest.get
        unsorted_append = self._unsorted.append
        store_one = self._store_one
        head_pack = _payload_head_pack
        u32_pack = _u32_pack
        frame_pack = _frame_head_pack
        time_ns = _time_ns
        key_bytes_max = KEY_BYTES_MAX

        def put(key: bytes, value: bytes) -> int:
            if (
                key.__class__ is not bytes
                or value.__class__ is not bytes
                or not key
                or len(key) > key_bytes_max
                or len(value) > value_bytes_max
            ):
                if slow is None:
                    raise InvalidArgumentError("put takes a non-empty bytes key and a bytes value")
                return slow(key, value)
            with lock:
                if self._closed or self._failed is not None:
                    self._check_open()
                seq = self._next_seq
                prev = latest_get(key)
                ts = time_ns() // 1_000_000
                if ts < self._last_ts_ms:  # ledger time never goes back, even if the clock does
                    ts = self._last_ts_ms
                else:
                    self._last_ts_ms = ts
                payload = (
                    head_pack(
                        0 if prev is None else (prev if prev >= 0 else ~prev) + 1,
                        FLAG_COMMIT,
                        0,
                        seq,
                        ts,
                        OP_PUT,
                        len(key),
                    )
                    + key
                    + u32_pack(len(value))
                    + value
                )
                store_one(frame_pack(len(payload), crc32c(payload)), payload, key, OP_PUT)
                self._next_seq = seq + 1
                latest[key] = seq
                if prev is None:
                    unsorted_append(key)
                    self._live += 1
                elif prev <= self._clear_seq:
                    self._live += 1
                if len(value) <= self._cache_entry_max:
                    self._cache[key] = value
                    self._cache_bytes += len(value)
                    if self._cache_bytes > self._cache_bytes_max:
                        self._evict()
                else:
                    self._cache.pop(key, None)
                return seq

        return put

    def apply(self, ops: list[tuple[int, bytes, bytes]]) -> int:
        """Append a group of (op, key, value) atomically; returns the last seq."""
        with self._lock:
            self._check_open()
            if not ops:
                return self._next_seq - 1
            ts = self._timestamp()
            seq0 = self._next_seq
            latest = self._latest
            latest_get = latest.get
            new: dict[bytes, int] = {}  # key -> its newest seq within this group (~seq: delete)
            new_get = new.get
            frames = []
            keys = []
            head_pack = _payload_head_pack
            u32_pack = _u32_pack
            frame_pack = _frame_head_pack
            last = len(ops) - 1
            for i, (op, key, value) in enumerate(ops):
                s = seq0 + i
                prev = new_get(key)
                if prev is None:
                    prev = latest_get(key)
                payload = (
                    head_pack(
                        0 if prev is None else (prev if prev >= 0 else ~prev) + 1,
                        FLAG_COMMIT if i == last else 0,
                        0,
                        s,
                        ts,
                        op,
                        len(key),
                    )
                    + key
                    + u32_pack(len(value))
                    + value
                )
                frames.append(frame_pack(len(payload), crc32c(payload)))
                frames.append(payload)
                keys.append(key)
                new[key] = s if op == OP_PUT else ~s
            # Store first: if it fails (disk full, I/O error), the index is untouched.
            self._store_parts(frames, keys, bytes([op for op, _, _ in ops]))
            self._next_seq = seq0 + len(ops)
            clear_seq = self._clear_seq
            live = self._live
            unsorted = self._unsorted
            for key, s in new.items():
                old = latest_get(key)
                if old is None:
                    unsorted.append(key)
                    was_live = False
                else:
                    was_live = old > clear_seq
                if s >= 0:
                    live += not was_live
                else:
                    live -= was_live
            latest.update(new)
            self._live = live
            cache = self._cache
            entry_max = self._cache_entry_max
            added = 0
            for op, key, value in ops:
                if op == OP_PUT and len(value) <= entry_max:
                    cache[key] = value
                    added += len(value)
                else:
                    cache.pop(key, None)
            self._cache_bytes += added
            if self._cache_bytes > self._cache_bytes_max:
                self._evict()
            return self._next_seq - 1

    def delete(self, key: bytes) -> int:
        return self.apply([(OP_DELETE, key, b"")])

    def clear(self) -> int:
        with self._lock:
            self._check_open()
            seq = self._next_seq
            frame = encode_frame(FLAG_COMMIT, 0, seq, self._timestamp(), OP_CLEAR, b"", b"")
            self._store([frame], [b""], bytes((OP_CLEAR,)))
            self._next_seq = seq + 1
            self._clear_seq = seq
            self._clear_seqs.append(seq)
            self._live = 0
            self._cache.clear()
            self._cache_bytes = 0
            return seq

    def get(self, key: bytes) -> bytes | None:
        value = self._cache.get(key)
        if value is None:
            found = self.get_with_seq(key)
            return None if found is None else found[1]
        return value

    def get_with_seq(self, key: bytes) -> tuple[int, bytes] | None:
        """(seq, value) of the key's live record, or None."""
        with self._lock:
            if self._closed:
                raise ClosedError("the ledger is closed")
            seq = self._latest.get(key)
            if seq is None or seq <= self._clear_seq:
                return None
            value = self._cache.get(key)
            if value is None:
                _, rec = self._read_record(seq)
                value = rec.value
                self._cache_put(key, value)
            return seq, value

    def _read_record(self, seq: int) -> tuple[int | None, Record]:
        payload = self._read_payload(seq)
        prev, rec = decode_payload(payload)
        if rec.seq != seq:
            raise CorruptionError(f"record {seq} holds seq {rec.seq}")
        return prev, rec

    def record(self, seq: int) -> Record:
        with self._lock:
            if self._closed:
                raise ClosedError("the ledger is closed")
            return self._read_record(seq)[1]

    def __len__(self) -> int:
        if self._closed:
            raise ClosedError("the ledger is closed")
        return self._live

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def history(self, key: bytes) -> list[Version]:
        with self._lock:
            if self._closed:
                raise ClosedError("the ledger is closed")
            versions = []
            seq = self._latest.get(key)
            if seq is not None and seq < 0:
                seq = ~seq
            while seq is not None:
                prev, rec = self._read_record(seq)
                versions.append(Version(rec.seq, rec.ts_ms, rec.op, rec.value))
                if prev is not None and prev >= seq:
                    raise CorruptionError(f"record {seq} links to a later version {prev}")
                seq = prev
            versions.reverse()
            if versions and self._clear_seqs:
                first = versions[0].seq
                clears = [
                    Version(*self._read_record(s)[1][:3], b"")
                    for s in self._clear_seqs
                    if s > first
                ]
                versions = sorted(versions + clears)
            return versions

    def _merge_sorted(self) -> None:
        if self._unsorted:
            self._sorted.update(self._unsorted)
            self._unsorted.clear()  # in place: the put closure holds this list

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        if prefix:
            if start is None or start < prefix:
                start = prefix
            succ = _prefix_successor(prefix)
            if succ is not None and (end is None or end > succ):
                end = succ
        lo = start
        inclusive_lo = True
        while True:
            with self._lock:
                if self._closed:
                    raise ClosedError("the ledger is closed")
                self._merge_sorted()
                keys = list(
                    itertools.islice(
                        self._sorted.irange(lo, end, inclusive=(inclusive_lo, False)), _SCAN_CHUNK
                    )
                )
                out = []
                for k in keys:
                    found = self.get_with_seq(k)
                    if found is not None:
                        out.append((k, found[1]))
            yield from out
            if len(keys) < _SCAN_CHUNK:
                return
            lo = keys[-1]
            inclusive_lo = False

    def records(self, start: int = 0, end: int | None = None) -> Iterator[Record]:
        seq = max(0, start)
        while True:
            with self._lock:
                if self._closed:
                    raise ClosedError("the ledger is closed")
                stop = self._next_seq if end is None else min(end, self._next_seq)
                chunk = [self._read_record(s)[1] for s in range(seq, min(stop, seq + _SCAN_CHUNK))]
            yield from chunk
            seq += len(chunk)
            if not chunk or seq >= stop:
                return

    def leaf_hashes(self) -> bytearray:
        """Leaf hashes of every record so far (32 bytes each); hashes pending records first."""
        with self._lock:
            if self._closed:
                raise ClosedError("the ledger is closed")
            self._hash_pending()
            return self._leaf_hashes

    def sync(self) -> None:
        if self._closed:
            raise ClosedError("the ledger is closed")
        if self._failed is not None:
            raise ScribeError(f"storage failed earlier: {self._failed}")
        try:
            with self._sync_lock:
                self._sync()
        except OSError as exc:
            # After a failed fsync the page cache can no longer be trusted: refuse everything after.
            self._failed = exc
            raise ScribeError(f"sync failed, the ledger refuses further writes: {exc}") from exc

    def close(self) -> None:
        with self._sync_lock, self._lock:
            if self._closed:
                return
            try:
                if self._failed is None:
                    self._sync()
                    self._before_close()
            finally:
                self._closed = True
                self._cache.clear()  # in place: closures over it must miss and see ClosedError
                self._cache = CLOSED  # type: ignore[assignment]
                self._close_storage()

    @property
    def closed(self) -> bool:
        return self._closed


def _prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with prefix (None: no bound)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return None
    p[-1] += 1
    return bytes(p)


def leaf_hash_of_payload(payload) -> bytes:
    return _sha256(memoryview(payload)[LEAF_HASH_INPUT_OFFSET:]).digest()


HASH_BYTES = 32
U32_UNPACK = struct.Struct(">I").unpack_from
