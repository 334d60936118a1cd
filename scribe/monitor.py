"""`scribe monitor`: follow the signed tree heads of every node and raise the alarm on any fork.

    python -m scribe monitor --node URL [--node URL ...] [--interval S] [--duration S] [--state FILE]

Every round, for each node: fetch its signed tree head; check the signature and the node's pinned
key; check the head against the newest head seen from every node (and those remembered in the
state file): equal sizes must have equal roots, and the smaller tree must be a prefix of the larger
one (an RFC 9162 consistency proof, fetched from the node holding the larger tree); then, unless
`--no-audit`, fetch the node's new records (GET /records), rebuild the tree from them and check that
it has the signed root (the records served are the records signed).

One line is printed per observation. On any inconsistency the monitor prints an ALARM line naming the
nodes, sizes and roots and exits 1. It exits 0 after --duration seconds (or on Ctrl+C) when all was
consistent, 2 on bad usage or when no node could ever be reached. Checking each new head against the
newest head of every node suffices: consistency is transitive, and each node's heads were checked in
turn against their predecessors.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from .client import Client, NodeUnreachableError, ResponseError
from .errors import InvalidArgumentError, ScribeError
from .merkle import MerkleTree
from .signing import SignedTreeHead
from .verify import (
    StateFileError,
    TrustStore,
    VerificationFailed,
    check_consistency,
    check_head_signature,
    check_identity,
    short,
)

EXIT_CONSISTENT = 0
EXIT_ALARM = 1
EXIT_USAGE = 2
INTERVAL_S_DEFAULT = 5.0
# Records fetched per /records request while auditing (the server's RECORDS_LIMIT_MAX).
AUDIT_PAGE_RECORDS = 10_000


class Alarm(ScribeError):
    """Two observations contradict each other: a fork, a rewrite, a bad signature."""


@dataclass
class Seen:
    """The newest head seen from one node (or remembered for one key in the state file)."""

    name: str  # the node URL (or where the state file last saw the key)
    head: SignedTreeHead
    client: Client | None  # who can prove things about this head; None: remembered only


class _Audit:
    """The tree rebuilt from one node's records, as far as they were fetched."""

    def __init__(self) -> None:
        self.tree = MerkleTree()


class Monitor:
    """The monitor's state and one round of checks; `run` loops rounds."""

    def __init__(
        self,
        urls: list[str],
        store: TrustStore,
        *,
        audit: bool = True,
        timeout_s: float = 10.0,
        say: Callable[[str], None] = print,
    ):
        self.clients = [Client(url, timeout_s=timeout_s) for url in urls]
        self.store = store
        self.audit = audit
        self.say = say
        self.latest: dict[str, Seen] = {}  # node URL -> newest head seen from it
        self._audits = {c.url: _Audit() for c in self.clients}
        self.observations = 0
        # Heads remembered from earlier runs: checked against like any other earlier head.
        self._remembered = [Seen(name, head, None) for name, head in store.heads()]

    def close(self) -> None:
        for c in self.clients:
            c.close()

    def _earlier(self, url: str) -> list[Seen]:
        """Every earlier head to check a new head of `url` against."""
        seen = list(self.latest.values())
        urls_seen = set(self.latest)
        seen += [s for s in self._remembered if s.name not in urls_seen]
        return seen

    def _check_pair(self, old: Seen, new: Seen) -> None:
        """Alarm unless old and new are heads of one append-only tree."""
        old_name = f"{old.name} (size {old.head.tree_size}, root {old.head.root.hex()})"
        new_name = f"{new.name} (size {new.head.tree_size}, root {new.head.root.hex()})"
        if old.head.tree_size <= new.head.tree_size:
            # The node of the newer head holds both trees: it proves old is its prefix.
            fetch = functools.partial(new.client.consistency, stale=True)
            first, second, first_name, second_name = old, new, old_name, new_name
        elif old.name == new.name:
            raise Alarm(f"the tree of {new.name} shrank: {new_name} after {old_name}")
        elif old.client is not None:
            fetch = functools.partial(old.client.consistency, stale=True)
            first, second, first_name, second_name = new, old, new_name, old_name
        else:
            return  # a larger head remembered from a node not monitored now: no one to ask
        try:
            check_consistency(first.head, second.head, fetch, first_name, second_name)
        except VerificationFailed as exc:
            raise Alarm(str(exc)) from None
        except NodeUnreachableError:
            if second is new:
                raise
            # The larger head's node is down: this pair is covered when it is seen again, as its
            # next head is checked against this one (both are then prefixes of that head).
            return

    def _audit(self, client: Client, head: SignedTreeHead) -> None:
        """Fetch the node's records up to the head and check they hash to its signed root."""
        audit = self._audits[client.url]
        tree = audit.tree
        if tree.size > head.tree_size:
            if tree.root(head.tree_size) != head.root:
                raise Alarm(
                    f"{client.url}: the records it served hash to root "
                    f"{tree.root(head.tree_size).hex()} for size {head.tree_size}, but it signed "
                    f"{head.root.hex()}"
                )
            return
        while tree.size < head.tree_size:
            want = min(AUDIT_PAGE_RECORDS, head.tree_size - tree.size)
            records = client.records(tree.size, want, stale=True)
            if not records:
                raise Alarm(
                    f"{client.url} signed a tree of {head.tree_size} records but serves only "
                    f"{tree.size}"
                )
            for offset, record in enumerate(records[:want]):
                if record.seq != tree.size + offset:
                    raise Alarm(
                        f"{client.url}: /records returned seq {record.seq} where "
                        f"{tree.size + offset} belongs"
                    )
            tree.extend(r.leaf_hash() for r in records[:want])
        root = tree.root(head.tree_size)
        if root != head.root:
            raise Alarm(
                f"{client.url}: its records 0..{head.tree_size - 1} hash to root {root.hex()}, but "
                f"it signed root {head.root.hex()} for size {head.tree_size}: the records served "
                "are not the records signed"
            )

    def observe(self, client: Client) -> bool:
        """One observation of one node; False when it was unreachable. Raises Alarm."""
        try:
            head = client.tree_head(stale=True)  # this node's own tree, even when cut off
        except ResponseError as exc:
            raise Alarm(f"{client.url} served a malformed tree head: {exc}") from None
        except (NodeUnreachableError, ScribeError) as exc:
            self.say(f"{_now()} {client.url} unreachable: {exc}")
            return False
        try:
            note = check_identity(self.store, client.url, head.public_key, None)
            check_head_signature(head, client.url)
        except VerificationFailed as exc:
            raise Alarm(str(exc)) from None
        if note:
            self.say(note)
        new = Seen(client.url, head, client)
        earlier = self._earlier(client.url)
        try:
            for old in earlier:
                self._check_pair(old, new)
            if self.audit:
                self._audit(client, head)
        except Alarm:
            raise
        except ResponseError as exc:
            raise Alarm(f"{client.url} answered a malformed proof or record: {exc}") from None
        except ScribeError as exc:  # unreachable, or refused (503, 400): try again next round
            self.say(f"{_now()} {client.url} size={head.tree_size}: check postponed: {exc}")
            return False
        previous = self.latest.get(client.url)
        if previous is None or head.tree_size >= previous.head.tree_size:
            self.latest[client.url] = new
        self.store.trust(head)
        self.observations += 1
        audited = " records audited" if self.audit else ""
        self.say(
            f"{_now()} {client.url} size={head.tree_size} root={head.root.hex()} "
            f"key={short(head.public_key.hex())} ok: consistent with {len(earlier)} earlier "
            f"head(s){audited}"
        )
        return True

    def round(self) -> None:
        for client in self.clients:
            self.observe(client)


def _now() -> str:
    return time.strftime("%H:%M:%S")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node", action="append", required=True, help="node URL (repeat for every node)"
    )
    parser.add_argument(
        "--interval", type=float, default=INTERVAL_S_DEFAULT, help="seconds between rounds"
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds (exit 0)")
    parser.add_argument("--state", help="remember pinned keys and heads across runs in this file")
    parser.add_argument(
        "--no-audit",
        action="store_true",
        help="only follow heads; do not rebuild the tree from the nodes' records",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0 or (args.duration is not None and args.duration < 0):
        print("scribe monitor: --interval must be > 0 and --duration >= 0")
        return EXIT_USAGE
    try:
        store = TrustStore(args.state)
        monitor = Monitor(args.node, store, audit=not args.no_audit, timeout_s=args.timeout)
    except (StateFileError, InvalidArgumentError) as exc:
        print(f"scribe monitor: {exc}")
        return EXIT_USAGE
    deadline = None if args.duration is None else time.monotonic() + args.duration
    try:
        while True:
            monitor.round()
            store.save()
            if deadline is not None and time.monotonic() + args.interval > deadline:
                break
            time.sleep(args.interval)
    except Alarm as exc:
        print(f"ALARM: {exc}", flush=True)
        return EXIT_ALARM
    except KeyboardInterrupt:
        print("stopped")
    except StateFileError as exc:
        print(f"scribe monitor: {exc}")
        return EXIT_USAGE
    finally:
        monitor.close()
    if monitor.observations == 0:
        print("scribe monitor: no node could be reached")
        return EXIT_USAGE
    print(f"all consistent: {monitor.observations} observation(s) of {len(args.node)} node(s)")
    return EXIT_CONSISTENT
