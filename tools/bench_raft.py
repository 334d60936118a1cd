"""Raft core throughput: a 3-node group on an in-memory network, no faults, batching on.

Prints entries committed (and applied on every node) per second. Each round the leader takes
`--batch` separate propose() calls, then the runtime loop (persist, send, apply, advance) runs
until all of them are applied everywhere; appends carry up to max_entries_per_msg entries.

    python tools/bench_raft.py [--entries 200000] [--batch 1000] [--value-bytes 64] [--wire]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe.raft import MemoryRaftStorage, RaftConfig, RaftCore, Role  # noqa: E402
from scribe.raft.wire import decode_message, encode_message  # noqa: E402


def run(entries: int, batch: int, value_bytes: int, wire: bool) -> float:
    ids = [1, 2, 3]
    config = RaftConfig(max_entries_per_msg=4096, max_inflight_msgs=256)
    storages = {i: MemoryRaftStorage() for i in ids}
    cores = {i: RaftCore(i, ids, storages[i], config, random.Random(i)) for i in ids}
    inbox: deque = deque()
    applied = dict.fromkeys(ids, 0)

    def pump() -> None:
        busy = True
        while busy:
            busy = False
            for i in ids:
                core = cores[i]
                while core.has_ready():
                    busy = True
                    rd = core.ready()
                    storage = storages[i]
                    if rd.hard_state is not None:
                        storage.set_hard_state(rd.hard_state)
                    if rd.entries:
                        storage.append(rd.entries)
                    if rd.must_sync:
                        storage.sync()
                    inbox.extend(rd.messages)
                    if rd.committed_entries:
                        applied[i] = rd.committed_entries[-1].index
                    core.advance(rd)
            while inbox:
                busy = True
                m = inbox.popleft()
                if wire:
                    m = decode_message(encode_message(m))
                cores[m.to].step(m)

    cores[1].campaign()
    pump()
    if cores[1].role != Role.LEADER:
        raise SystemExit("benchmark setup: node 1 did not become leader")
    leader = cores[1]
    value = bytes(value_bytes)
    started = time.perf_counter()
    proposed = 0
    while proposed < entries:
        for _ in range(batch):
            leader.propose(value)
        proposed += batch
        pump()
    elapsed = time.perf_counter() - started
    target = leader.last_index
    if any(applied[i] != target for i in ids):
        raise SystemExit(f"benchmark: not everything applied: {applied} != {target}")
    return proposed / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="Raft core throughput (3 nodes, in memory)")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000, help="proposals between loop runs")
    parser.add_argument("--value-bytes", type=int, default=64)
    parser.add_argument("--wire", action="store_true", help="encode/decode every message too")
    args = parser.parse_args()
    rate = run(args.entries, args.batch, args.value_bytes, args.wire)
    print(
        f"3-node group, batch {args.batch}, {args.value_bytes}-byte entries"
        f"{', wire round-trip' if args.wire else ''}: {rate:,.0f} entries committed/s"
    )


if __name__ == "__main__":
    main()
