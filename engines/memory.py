"""An engine that keeps records in memory only: for tests and simulations. Nothing survives close."""

from __future__ import annotations

from scribe.errors import CorruptionError

from .base import Engine, leaf_hash_of_payload
from .format import FRAME_HEAD_BYTES


class MemoryEngine(Engine):
    def __init__(self, cache_bytes_max: int = 1 << 62):
        super().__init__(cache_bytes_max=cache_bytes_max)
        self._payloads: list[bytes] = []

    def _store(self, frames, keys, ops) -> None:
        self._payloads.extend(f[FRAME_HEAD_BYTES:] for f in frames)

    def _read_payload(self, seq: int) -> bytes:
        if not 0 <= seq < len(self._payloads):
            raise CorruptionError(f"no record {seq}")
        return self._payloads[seq]

    def _hash_pending(self) -> None:
        hashed = len(self._leaf_hashes) // 32
        for payload in self._payloads[hashed:]:
            self._leaf_hashes += leaf_hash_of_payload(payload)

    def _sync(self) -> None:
        self._hash_pending()

    def _close_storage(self) -> None:
        self._payloads = []
