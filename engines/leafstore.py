"""LeafHashes: the Merkle leaf hash of every record, kept on disk, with only the unwritten tail in RAM.

`leaves.hashes` beside the segments holds 32 bytes per record in seq order. The Merkle tree reads
leaves through this object (slices are preads), so a ledger's RAM holds no per-record hash: only the
hashes not yet written and the tree's cached subtree roots (see scribe.merkle).
"""

from __future__ import annotations

import os
import threading

from . import fileio

HASH_BYTES = 32


class LeafHashes:
    """A growing byte string of leaf hashes: file-backed prefix + in-memory tail. Thread-safe."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._file_bytes = os.fstat(self._fd).st_size
        self._tail = bytearray()
        self._lock = threading.Lock()

    @property
    def fd(self) -> int:
        return self._fd

    def __len__(self) -> int:
        with self._lock:
            return self._file_bytes + len(self._tail)

    def __getitem__(self, s: slice) -> bytes:
        if not isinstance(s, slice):
            raise TypeError("LeafHashes supports slices only")
        with self._lock:
            file_bytes = self._file_bytes
            start, stop, step = s.indices(file_bytes + len(self._tail))
            if step != 1:
                raise ValueError("LeafHashes slices take no step")
            parts = []
            if start < min(stop, file_bytes):
                parts.append(fileio.pread(self._fd, min(stop, file_bytes) - start, start))
            if stop > file_bytes:
                parts.append(
                    bytes(self._tail[max(start, file_bytes) - file_bytes : stop - file_bytes])
                )
        return b"".join(parts)

    def __bytes__(self) -> bytes:
        return self[0 : len(self)]

    def __iadd__(self, data) -> LeafHashes:
        with self._lock:
            self._tail += data
        return self

    def truncate(self, nbytes: int) -> None:
        """Keep the first nbytes (recovery at open, before anything is served)."""
        with self._lock:
            if nbytes >= self._file_bytes:
                del self._tail[nbytes - self._file_bytes :]
            else:
                self._tail = bytearray()
                os.ftruncate(self._fd, nbytes)
                self._file_bytes = nbytes

    @property
    def written_bytes(self) -> int:
        return self._file_bytes

    def write_tail(self) -> bool:
        """Hand the in-memory tail to the file (the caller fsyncs `fd`); True when there was one."""
        with self._lock:
            if not self._tail:
                return False
            fileio.pwrite_all(self._fd, self._tail, self._file_bytes)
            self._file_bytes += len(self._tail)
            self._tail = bytearray()
            return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
