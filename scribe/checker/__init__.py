"""scribe.checker: does a history of client operations show a correct cluster?

    from scribe.checker import Op, check_linearizable, check_ledger, HistoryFile
    result = check_linearizable(ops, timeout_s=60)   # .verdict: "pass", "fail" or "unknown"
    report = check_ledger(ops, final_histories, heads, final_head, consistency)  # .ok

See history.py for the op format, linearizability.py for the search, ledger.py for the checks.
"""

from scribe.checker.history import (
    DELETE,
    FAIL,
    GET,
    OK,
    PUT,
    UNKNOWN,
    HistoryError,
    HistoryFile,
    Op,
    check_history,
)
from scribe.checker.ledger import FinalVersion, HeadSeen, LedgerReport, check_ledger
from scribe.checker.linearizability import (
    PASS,
    TIMED_OUT,
    VIOLATION,
    KeyResult,
    LinearizabilityResult,
)
from scribe.checker.linearizability import check as check_linearizable

__all__ = [
    "DELETE",
    "FAIL",
    "GET",
    "OK",
    "PASS",
    "PUT",
    "TIMED_OUT",
    "UNKNOWN",
    "VIOLATION",
    "FinalVersion",
    "HeadSeen",
    "HistoryError",
    "HistoryFile",
    "KeyResult",
    "LedgerReport",
    "LinearizabilityResult",
    "Op",
    "check_history",
    "check_ledger",
    "check_linearizable",
]
