"""Storage engines: `SegmentEngine` (durable segment files) and `MemoryEngine` (tests, simulations)."""

from .base import Engine
from .memory import MemoryEngine
from .segment import SegmentEngine

__all__ = ["Engine", "MemoryEngine", "SegmentEngine"]
