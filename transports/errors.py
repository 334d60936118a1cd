"""Typed errors of the transports package."""


class TransportError(Exception):
    """Base class of every transport error."""


class TransportConfigError(TransportError, ValueError):
    """Bad arguments: unknown kind, bad peer table, bad limits, a path that is too long."""


class TransportBindError(TransportError):
    """The transport could not bind its listening endpoint (address in use, permissions)."""


class TransportClosedError(TransportError):
    """recv() on a transport that is closed (or was closed while waiting)."""


class TransportStateError(TransportError):
    """A call that does not fit the lifecycle, such as send() before start()."""
