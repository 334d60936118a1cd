"""Histories of client operations on a key-value register, and their JSON files.

An operation is one client request: a put, get or delete of one key, with the monotonic times
(seconds) of its call and of its return, and its outcome:

    ok       the node answered with success: a write took effect exactly once, a get saw `output`
    fail     the node said the request certainly did not take effect (503 no_leader, refused
             connection before sending): it is left out of every check
    unknown  no definite answer (504 outcome_unknown, a timeout, a killed client): a write may
             take effect at any point after its call, or never; a get tells nothing

For a get, `output` is the value read (str) or None when the key was absent. Values are str.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PUT = "put"
GET = "get"
DELETE = "delete"
KINDS = (PUT, GET, DELETE)

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"
OUTCOMES = (OK, FAIL, UNKNOWN)

HISTORY_FORMAT = "scribe-history/1"


class HistoryError(ValueError):
    """A history (or history file) that is not well formed."""


@dataclass
class Op:
    """One client operation. `ret` is math.inf while the outcome is unknown."""

    id: int
    process: int
    kind: str
    key: str
    value: str | None = None  # put: the value written
    output: str | None = None  # get (ok): the value read, None = absent
    call: float = 0.0
    ret: float = math.inf
    outcome: str = UNKNOWN
    seq: int | None = None  # the ledger seq the node reported (put/delete ok, get ok)
    node: int | None = None  # the node the request went to
    error: str | None = None  # the error text of a failed or unknown request

    def check(self) -> None:
        if self.kind not in KINDS:
            raise HistoryError(f"op {self.id}: unknown kind {self.kind!r}")
        if self.outcome not in OUTCOMES:
            raise HistoryError(f"op {self.id}: unknown outcome {self.outcome!r}")
        if self.kind == PUT and not isinstance(self.value, str):
            raise HistoryError(f"op {self.id}: a put needs a str value")
        if self.outcome != UNKNOWN and not self.call <= self.ret < math.inf:
            raise HistoryError(f"op {self.id}: returned at {self.ret} before its call {self.call}")

    @property
    def is_write(self) -> bool:
        return self.kind != GET

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        if math.isinf(self.ret):
            doc["ret"] = None
        return {k: v for k, v in doc.items() if v is not None or k in ("output", "ret")}

    @classmethod
    def from_json(cls, doc: Any) -> Op:
        if not isinstance(doc, dict):
            raise HistoryError(f"an op must be a JSON object, got {doc!r:.80}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(doc) - known
        if unknown:
            raise HistoryError(f"op {doc.get('id')}: unknown fields {sorted(unknown)}")
        values = dict(doc)
        if values.get("ret") is None:
            values["ret"] = math.inf
        try:
            op = cls(**values)
        except TypeError as exc:
            raise HistoryError(f"op {doc.get('id')}: {exc}") from None
        op.check()
        return op


@dataclass
class HistoryFile:
    """A run's record: the ops, the tree heads seen, the nemesis events and what produced them."""

    ops: list[Op]
    heads: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        doc = {
            "format": HISTORY_FORMAT,
            "meta": self.meta,
            "ops": [op.to_json() for op in self.ops],
            "heads": self.heads,
            "events": self.events,
        }
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> HistoryFile:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HistoryError(f"{path}: cannot read a history: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != HISTORY_FORMAT:
            raise HistoryError(f"{path}: not a {HISTORY_FORMAT} file")
        ops = [Op.from_json(d) for d in doc.get("ops", [])]
        return cls(
            ops, list(doc.get("heads", [])), list(doc.get("events", [])), doc.get("meta", {})
        )


def check_history(ops: Iterable[Op]) -> None:
    """Raise HistoryError unless every op is well formed and ids are unique."""
    seen: set[int] = set()
    for op in ops:
        op.check()
        if op.id in seen:
            raise HistoryError(f"op id {op.id} appears twice")
        seen.add(op.id)
