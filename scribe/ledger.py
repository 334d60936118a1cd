"""`scribe.Ledger`: the embedded, verifiable, append-only key-value ledger (DESIGN §3)."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

# engines imports scribe.errors, so the ledger imports engines lazily (in __init__) to stay acyclic.
from .errors import ClosedError, InvalidArgumentError
from .limits import (
    CACHE_BYTES_DEFAULT,
    FLUSH_EVERY_MS_DEFAULT,
    KEY_BYTES_MAX,
    SEGMENT_BYTES_DEFAULT,
    VALUE_BYTES_MAX_DEFAULT,
    VALUE_BYTES_MAX_LIMIT,
)
from .record_tree import RecordTree
from .records import OP_DELETE, OP_PUT, Proof, Record, TreeHead, Version

log = logging.getLogger("scribe.ledger")
_open_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _coerce(x: Any, what: str) -> bytes:
    if isinstance(x, str):
        try:
            return x.encode()
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(f"{what} is not valid Unicode: {exc}") from None
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    raise InvalidArgumentError(f"{what} must be str or bytes-like, not {type(x).__name__}")


def _key(key: Any) -> bytes:
    k = key if key.__class__ is bytes else _coerce(key, "key")
    if not k:
        raise InvalidArgumentError("key must not be empty")
    if len(k) > KEY_BYTES_MAX:
        raise InvalidArgumentError(f"key is {len(k)} bytes, over the limit of {KEY_BYTES_MAX}")
    return k


def _bound(x: Any, what: str) -> bytes | None:
    return None if x is None else (x if x.__class__ is bytes else _coerce(x, what))


class Ledger:
    """A durable, verifiable, append-only key-value ledger stored in one directory.

    Every put, delete and clear appends one record (never overwriting); every record is a leaf of an
    RFC 9162 Merkle tree, so `prove` and `consistency` give proofs any verifier can check.
    Thread-safe. Data is durable after `flush()`, and within `flush_every_ms` without it.
    """

    def __init__(
        self,
        path: str,
        *,
        segment_size: int = SEGMENT_BYTES_DEFAULT,
        max_cache_size: int = CACHE_BYTES_DEFAULT,
        flush_every_ms: int = FLUSH_EVERY_MS_DEFAULT,
        max_value_bytes: int = VALUE_BYTES_MAX_DEFAULT,
        _engine: Any = None,
    ):
        for name, val in (
            ("segment_size", segment_size),
            ("max_cache_size", max_cache_size),
            ("flush_every_ms", flush_every_ms),
            ("max_value_bytes", max_value_bytes),
        ):
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                raise InvalidArgumentError(f"{name} must be a non-negative int, not {val!r}")
        if max_value_bytes > VALUE_BYTES_MAX_LIMIT:
            raise InvalidArgumentError(f"max_value_bytes must be at most {VALUE_BYTES_MAX_LIMIT}")
        self._path = str(path)
        self._max_value_bytes = max_value_bytes
        self._temp = False
        from engines.segment import SegmentEngine

        try:
            self._engine = _engine or SegmentEngine(
                self._path, segment_bytes=segment_size, cache_bytes_max=max_cache_size
            )
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None
        self._tree = RecordTree(self._engine)
        self._sync_each_write = flush_every_ms == 0
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if not self._sync_each_write:
            self._flusher = threading.Thread(
                target=_flush_loop,
                args=(self._engine, self._stop, flush_every_ms / 1000.0),
                name=f"scribe-flush-{self._path}",
                daemon=True,
            )
            self._flusher.start()
        # The hot paths as closures, unless a subclass overrides the methods they stand for.
        if type(self).get is Ledger.get:
            self.get = self._make_get()
        if not self._sync_each_write and type(self).put is Ledger.put:
            # The hot path: one closure that checks plain bytes itself and sends anything else
            # (str, bytes-like, bad input) through _put_slow. Shadows the put method below.
            self.put = self._engine._make_put(max_value_bytes, self._put_slow)
            self.put.__doc__ = Ledger.put.__doc__
        _open_ledgers.add(self)

    @classmethod
    def temp(cls, **kwargs) -> Ledger:
        """A ledger in a fresh temporary directory, removed on close."""
        path = tempfile.mkdtemp(prefix="scribe-ledger-")
        led = cls(path, **kwargs)
        led._temp = True
        return led

    # ---- writes -----------------------------------------------------------------------------

    def put(self, key: str | bytes, value: str | bytes) -> int:
        """Append a new version of key; returns the record's seq."""
        seq = self._put_slow(key, value)
        if self._sync_each_write:
            self._engine.sync()
        return seq

    def _put_slow(self, key: Any, value: Any) -> int:
        """Convert and check put's arguments (raising InvalidArgumentError), then append."""
        k = key if key.__class__ is bytes else _coerce(key, "key")
        if not k or len(k) > KEY_BYTES_MAX:
            _key(k)  # raises the precise error
        v = value if value.__class__ is bytes else _coerce(value, "value")
        if len(v) > self._max_value_bytes:
            raise InvalidArgumentError(
                f"value is {len(v)} bytes, over the limit of {self._max_value_bytes}"
            )
        return self._engine.put(k, v)

    def delete(self, key: str | bytes) -> int:
        """Append a tombstone for key (history stays); returns its seq."""
        seq = self._engine.delete(_key(key))
        if self._sync_each_write:
            self._engine.sync()
        return seq

    def apply_batch(self, ops: Iterable[tuple[Any, Any]]) -> int:
        """Apply [(key, value), ...] atomically (value None = delete); returns the last seq.

        All records of a batch survive a crash together or not at all. An empty batch changes
        nothing and returns the seq of the newest record (-1 for an empty ledger).
        """
        if isinstance(ops, str | bytes | dict):
            raise InvalidArgumentError("apply_batch takes a list of (key, value) pairs")
        try:
            items = list(ops)
        except TypeError:
            raise InvalidArgumentError("apply_batch takes a list of (key, value) pairs") from None
        prepared = []
        append = prepared.append
        limit = self._max_value_bytes
        for i, item in enumerate(items):
            try:
                key, value = item
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"batch item {i} is not a (key, value) pair") from None
            k = key if key.__class__ is bytes else _coerce(key, "key")
            if not k or len(k) > KEY_BYTES_MAX:
                _key(k)  # raises the precise error
            if value is None:
                append((OP_DELETE, k, b""))
                continue
            v = value if value.__class__ is bytes else _coerce(value, "value")
            if len(v) > limit:
                raise InvalidArgumentError(
                    f"batch item {i}: value is {len(v)} bytes, over the limit of {limit}"
                )
            append((OP_PUT, k, v))
        seq = self._engine.apply(prepared)
        if self._sync_each_write and prepared:
            self._engine.sync()
        return seq

    def clear(self) -> int:
        """Append a clear record: every key becomes absent; history and proofs stay."""
        seq = self._engine.clear()
        if self._sync_each_write:
            self._engine.sync()
        return seq

    def flush(self) -> None:
        """Make every write before this call durable (fsync of data and directories)."""
        self._engine.sync()

    # ---- reads ------------------------------------------------------------------------------

    def get(self, key: str | bytes) -> bytes | None:
        """The newest value of key, or None when absent or deleted."""
        if key.__class__ is str:
            try:
                key = key.encode()
            except UnicodeEncodeError:
                key = _key(key)
        found = self._engine.get_with_seq(_key(key))
        return None if found is None else found[1]

    def _make_get(self):
        """get() as one closure: a cache hit costs one dict lookup; the rest goes to the method."""
        cache_get = self._engine.cache.get  # cleared in place at close, so misses reach ClosedError
        slow = Ledger.get.__get__(self)

        def get(key):
            try:
                value = cache_get(key)
            except TypeError:  # unhashable: not a key at all; the method explains
                value = None
            if value is None:
                return slow(key)
            return value

        get.__doc__ = Ledger.get.__doc__
        return get

    def get_with_seq(self, key: str | bytes) -> tuple[int, bytes] | None:
        """(seq, value) of the newest live version of key, or None."""
        return self._engine.get_with_seq(_key(key))

    def __len__(self) -> int:
        return len(self._engine)

    def __contains__(self, key: str | bytes) -> bool:
        return self.get(key) is not None

    def is_empty(self) -> bool:
        return len(self._engine) == 0

    def history(self, key: str | bytes) -> list[Version]:
        """Every version of key, oldest first (puts, deletes and clears that followed its first write)."""
        return self._engine.history(_key(key))

    def scan(
        self,
        start: str | bytes | None = None,
        end: str | bytes | None = None,
        prefix: str | bytes | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Live (key, value) pairs in key order, start inclusive, end exclusive."""
        return self._engine.scan(
            _bound(start, "start"), _bound(end, "end"), _bound(prefix, "prefix")
        )

    def records(self, start: int = 0, end: int | None = None) -> Iterator[Record]:
        """Every record (leaf) in seq order, from start to end exclusive."""
        if not isinstance(start, int) or (end is not None and not isinstance(end, int)):
            raise InvalidArgumentError("records() takes integer start and end")
        return self._engine.records(start, end)

    # ---- verification -----------------------------------------------------------------------

    def tree_head(self) -> TreeHead:
        """Size and root of the tree over every record; ts_ms of the newest record (0 when empty)."""
        return self._tree.tree_head()

    def prove(self, key: str | bytes, seq: int | None = None) -> Proof:
        """Inclusion proof of key's newest record (or of its version `seq`, from history)."""
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            raise InvalidArgumentError("seq must be a non-negative int")
        return self._tree.prove(_key(key), seq)

    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 consistency proof that the tree of `first` records is a prefix of `second`'s."""
        for name, val in (("first", first), ("second", second)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                raise InvalidArgumentError(f"{name} must be a non-negative int")
        return self._tree.consistency(first, second)

    # ---- lifecycle --------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._engine.closed

    def close(self) -> None:
        """Flush and release the directory. Further use raises ClosedError. Idempotent."""
        if self._engine.closed:
            return
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        try:
            self._engine.close()
        finally:
            _open_ledgers.discard(self)
            if self._temp:
                shutil.rmtree(self._path, ignore_errors=True)

    def __enter__(self) -> Ledger:
        if self._engine.closed:
            raise ClosedError("the ledger is closed")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._engine.closed else f"{len(self)} keys"
        return f"<Ledger {self._path!r} {state}>"


SimpleScribeLedger = Ledger


def _flush_loop(engine: Any, stop: threading.Event, every_s: float) -> None:
    synced = engine.next_seq
    while not stop.wait(every_s):
        if engine.closed:
            return
        n = engine.next_seq
        if n == synced:
            continue
        try:
            engine.sync()
        except Exception:
            log.exception("background flush failed; the ledger refuses further writes")
            return
        synced = n


@atexit.register
def _close_open_ledgers() -> None:
    for led in list(_open_ledgers):
        try:
            led.close()
        except Exception:
            log.exception("closing %r at exit failed", led)
