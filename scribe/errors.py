"""The typed exceptions of Scribe Ledger. Every error the library raises is a ScribeError."""


class ScribeError(Exception):
    """Base class of every Scribe Ledger error."""


class InvalidArgumentError(ScribeError, ValueError):
    """A caller passed a bad argument: empty or oversize key, oversize value, wrong type."""


class CorruptionError(ScribeError):
    """Stored data failed a checksum or describes an impossible record. Never served."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        where = ""
        if path is not None:
            where = f" in {path}" + (f" at offset {offset}" if offset is not None else "")
        super().__init__(message + where)
        self.path = path
        self.offset = offset


class ClosedError(ScribeError):
    """The ledger (or engine) was used after close()."""


class LockedError(ScribeError):
    """Another process holds the data directory."""


class NoLeaderError(ScribeError):
    """No leader is known: the request was certainly not applied (HTTP 503)."""


class OutcomeUnknownError(ScribeError):
    """A write was proposed but not confirmed in time: it may or may not be applied (HTTP 504)."""


class ConfigError(ScribeError):
    """A configuration file is invalid; the message names the file and key."""


class KeyNotFoundError(ScribeError, KeyError):
    """The key (or the version asked for) does not exist in the ledger."""
