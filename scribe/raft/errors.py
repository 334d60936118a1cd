"""Typed errors of the Raft core. All of them are ScribeErrors."""

from scribe.errors import CorruptionError, NoLeaderError, ScribeError


class WireError(CorruptionError):
    """A Raft message frame is truncated, garbled, of an unknown version or otherwise invalid."""


class RaftInvariantError(ScribeError):
    """An internal Raft invariant was violated: a bug or a corrupted/lost durable log. Never ignored."""


class ProposalDroppedError(NoLeaderError):
    """The proposal was certainly not appended (leadership transfer running, or too many pending)."""


def check(condition: bool, message: str) -> None:
    """Raise RaftInvariantError unless condition holds. Unlike assert, survives `python -O`."""
    if not condition:
        raise RaftInvariantError(message)
