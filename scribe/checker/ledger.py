"""Ledger checks beside linearizability: what an append-only, verifiable ledger promises.

- every acknowledged write is in the final history of its key, at the seq it was acknowledged with;
- acknowledged writes are ordered as real time orders them (seqs are global: across keys too);
- no value appears (in the ledger or in a read) that no client tried to write, and none whose
  write was certainly refused;
- the versions of a key only grow: its history's seqs ascend, and a read or write that starts
  after another one finished never sees an older seq;
- every tree head seen during the run is consistent with every other: heads of one size have one
  root, and each is a prefix of the final tree (RFC 9162 consistency proofs, checked here).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from scribe.checker.history import FAIL, GET, OK, PUT, Op
from scribe.merkle import verify_consistency

OP_PUT = 1
OP_DELETE = 2


@dataclass(frozen=True)
class FinalVersion:
    """One version of a key in the final ledger (from GET /history/<key>)."""

    seq: int
    op: int
    value: str


@dataclass(frozen=True)
class HeadSeen:
    """A tree head some node served during the run."""

    node: int
    tree_size: int
    root: bytes
    at: float = 0.0


@dataclass
class LedgerReport:
    lost_writes: list[str] = field(default_factory=list)
    misordered_writes: list[str] = field(default_factory=list)
    phantom_values: list[str] = field(default_factory=list)
    refused_writes_applied: list[str] = field(default_factory=list)
    version_regressions: list[str] = field(default_factory=list)
    inconsistent_heads: list[str] = field(default_factory=list)
    heads_checked: int = 0

    @property
    def ok(self) -> bool:
        return not any(
            (
                self.lost_writes,
                self.misordered_writes,
                self.phantom_values,
                self.refused_writes_applied,
                self.version_regressions,
                self.inconsistent_heads,
            )
        )

    def summary(self) -> dict[str, int]:
        return {
            "lost_writes": len(self.lost_writes),
            "misordered_writes": len(self.misordered_writes),
            "phantom_values": len(self.phantom_values),
            "refused_writes_applied": len(self.refused_writes_applied),
            "version_regressions": len(self.version_regressions),
            "inconsistent_heads": len(self.inconsistent_heads),
            "heads_checked": self.heads_checked,
        }


def check_writes(
    ops: Sequence[Op], final: Mapping[str, Sequence[FinalVersion]], report: LedgerReport
) -> None:
    at_seq: dict[str, dict[int, FinalVersion]] = {
        key: {v.seq: v for v in versions} for key, versions in final.items()
    }
    tried = {(op.key, op.value) for op in ops if op.kind == PUT and op.outcome != FAIL}
    refused = {(op.key, op.value): op for op in ops if op.kind == PUT and op.outcome == FAIL}
    for op in ops:
        if not (op.is_write and op.outcome == OK):
            continue
        versions = at_seq.get(op.key, {})
        if op.seq is not None:
            found = versions.get(op.seq)
            want_op = OP_PUT if op.kind == PUT else OP_DELETE
            value = op.value if op.kind == PUT else ""
            if found is None or found.op != want_op or found.value != value:
                report.lost_writes.append(
                    f"op {op.id}: {op.kind} {op.key}={op.value!r} acknowledged at seq {op.seq}, "
                    f"the final history has {found!r} there"
                )
        elif op.kind == PUT and not any(v.value == op.value for v in versions.values()):
            report.lost_writes.append(f"op {op.id}: put {op.key}={op.value!r} is not in the ledger")
    for key, versions in final.items():
        seqs = [v.seq for v in versions]
        if any(b <= a for a, b in zip(seqs, seqs[1:], strict=False)):
            report.version_regressions.append(f"history of {key} is not in ascending seq: {seqs}")
        for v in versions:
            if v.op != OP_PUT:
                continue
            if (key, v.value) in refused:
                op = refused[(key, v.value)]
                report.refused_writes_applied.append(
                    f"op {op.id}: put {key}={v.value!r} was refused ({op.error}) yet is at seq {v.seq}"
                )
            elif (key, v.value) not in tried:
                report.phantom_values.append(f"{key}={v.value!r} at seq {v.seq} was never written")
    for op in ops:
        if op.kind == GET and op.outcome == OK and op.output is not None:
            if (op.key, op.output) not in tried:
                report.phantom_values.append(
                    f"op {op.id}: read {op.key}={op.output!r}, never written"
                )
            elif op.seq is not None:
                found = at_seq.get(op.key, {}).get(op.seq)
                if found is None or found.value != op.output:
                    report.version_regressions.append(
                        f"op {op.id}: read {op.key}={op.output!r} at seq {op.seq}, the final "
                        f"history has {found!r} there"
                    )


def _ordered(earlier: Iterable[Op], later: Iterable[Op], strict: bool) -> list[tuple[Op, Op]]:
    """Pairs (a, b) with a returned before b was called but seq(b) < seq(a) (<= when strict):
    for each b, the earlier op of highest seq is the one to compare with."""
    done = sorted(earlier, key=lambda op: op.ret)
    rets = [op.ret for op in done]
    best: list[Op] = []
    for op in done:
        best.append(op if not best or op.seq > best[-1].seq else best[-1])
    bad = []
    for b in later:
        n = bisect.bisect_left(rets, b.call)  # ops that returned strictly before b was called
        if n:
            a = best[n - 1]
            if b.seq < a.seq or (strict and b.seq == a.seq):
                bad.append((a, b))
    return bad


def check_real_time(ops: Sequence[Op], report: LedgerReport) -> None:
    writes = [op for op in ops if op.is_write and op.outcome == OK and op.seq is not None]
    for a, b in _ordered(writes, writes, strict=True):
        report.misordered_writes.append(
            f"op {a.id} ({a.kind} {a.key}, seq {a.seq}) returned before op {b.id} "
            f"({b.kind} {b.key}) was called, yet op {b.id} got the lower seq {b.seq}"
        )
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.outcome == OK and op.seq is not None and op.seq >= 0:
            by_key[op.key].append(op)
    for key_ops in by_key.values():
        reads = [op for op in key_ops if op.kind == GET]
        for a, b in _ordered(key_ops, reads, strict=False):
            report.version_regressions.append(
                f"op {b.id} read {b.key} at seq {b.seq} after op {a.id} had seen seq {a.seq}"
            )


def check_heads(
    heads: Sequence[HeadSeen],
    final_size: int,
    final_root: bytes,
    consistency: Callable[[int, int], list[bytes]],
    report: LedgerReport,
) -> None:
    """Heads of equal size must share a root; every head must be a prefix of the final tree
    (its consistency proof against the final head verifies). consistency(first, second) fetches
    a proof from a node that holds the final tree."""
    roots: dict[int, bytes] = {final_size: final_root}
    for head in heads:
        report.heads_checked += 1
        if head.tree_size > final_size:
            report.inconsistent_heads.append(
                f"node {head.node} served a head of size {head.tree_size}, beyond the final "
                f"tree of size {final_size}"
            )
            continue
        known = roots.setdefault(head.tree_size, head.root)
        if known != head.root:
            report.inconsistent_heads.append(
                f"node {head.node}: two roots for size {head.tree_size}: "
                f"{known.hex()} and {head.root.hex()}"
            )
    for size, root in sorted(roots.items()):
        if size in (0, final_size):
            continue
        proof = consistency(size, final_size)
        if not verify_consistency(size, final_size, root, final_root, proof):
            report.inconsistent_heads.append(
                f"the head of size {size} (root {root.hex()}) is not a prefix of the final tree "
                f"of size {final_size}"
            )


def check_ledger(
    ops: Sequence[Op],
    final: Mapping[str, Sequence[FinalVersion]],
    heads: Sequence[HeadSeen] = (),
    final_head: tuple[int, bytes] | None = None,
    consistency: Callable[[int, int], list[bytes]] | None = None,
) -> LedgerReport:
    report = LedgerReport()
    check_writes(ops, final, report)
    check_real_time(ops, report)
    if final_head is not None and consistency is not None:
        check_heads(heads, final_head[0], final_head[1], consistency, report)
    return report
