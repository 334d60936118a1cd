#!/usr/bin/env python3
"""Stress a running cluster: many concurrent writers over every node, then check every
acknowledged write on every node, that replicas hold identical records, and that seqs are dense.

    python tools/stress_test.py                                   # tutorial cluster
    python tools/stress_test.py --threads 32 --ops 5000 http://127.0.0.1:8001

PASS/FAIL per check; exits 1 if any fails.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checklib import Checks, Node, expect, node_urls, quote, wait_until  # noqa: E402

RECORDS_PAGE = 10_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="*", help="node URLs (default: the tutorial's three)")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--ops", type=int, default=2000, help="writes in total")
    parser.add_argument("--keys", type=int, default=200, help="distinct keys (overwrites happen)")
    parser.add_argument("--value-size", type=int, default=64)
    args = parser.parse_args(argv)
    urls = node_urls(args.urls)
    run = uuid.uuid4().hex[:8]
    checks = Checks()
    acked: dict[str, tuple[int, str]] = {}  # key -> (seq, value) of its newest acknowledged write
    lock = threading.Lock()
    failures: list[str] = []

    def writer(n: int) -> None:
        node = Node(urls[n % len(urls)])
        rng = random.Random(n)
        try:
            for i in range(n, args.ops, args.threads):
                key = f"stress:{run}:{rng.randrange(args.keys)}"
                value = f"{n}-{i}-".ljust(args.value_size, "x")
                try:
                    answer = node.put_json(key, value)
                except Exception as exc:  # counted, reported by the check below
                    with lock:
                        failures.append(f"{key}: {exc}")
                    continue
                with lock:
                    if key not in acked or acked[key][0] < answer["seq"]:
                        acked[key] = (answer["seq"], value)
        finally:
            node.close()

    def concurrent_writes():
        started = time.perf_counter()
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        print(f"      {args.ops - len(failures)} writes acknowledged in {elapsed:.1f} s "
              f"({(args.ops - len(failures)) / elapsed:.0f}/s)")  # fmt: skip
        expect(not failures, f"{len(failures)} writes failed, first: {failures[:3]}")

    def every_node_has_the_newest_value():
        for url in urls:
            node = Node(url)
            try:
                for key, (_seq, value) in acked.items():
                    got = node.get_text(key)
                    expect(got == value, f"{url} {key}: {got!r} != newest acknowledged {value!r}")
            finally:
                node.close()

    def dump(url: str) -> bytes:
        node = Node(url)
        try:
            parts, start = [], 0
            while True:
                page = node.get_json(f"/records?start={start}&limit={RECORDS_PAGE}")
                parts.extend(f"{r['seq']}:{r['key_b64']}:{r['value_b64']}" for r in page)
                if len(page) < RECORDS_PAGE:
                    return "\n".join(parts).encode()
                start += len(page)
        finally:
            node.close()

    def replicas_identical():
        def same() -> bool:
            dumps = [dump(u) for u in urls]
            return all(d == dumps[0] for d in dumps)

        wait_until(same, 15, "every replica to hold the same records")

    def seqs_dense_and_histories_ordered():
        node = Node(urls[-1])
        try:
            sample = list(acked)[:20]
            for key in sample:
                history = node.get_json("/history/" + quote(key))
                seqs = [v["seq"] for v in history]
                expect(seqs == sorted(seqs), f"{key} history out of order")
                expect(history[-1]["seq"] == acked[key][0], f"{key}: newest seq mismatch")
        finally:
            node.close()

    checks.run(f"{args.ops} concurrent writes from {args.threads} threads", concurrent_writes)
    checks.run("every node returns the newest acknowledged value", every_node_has_the_newest_value)
    checks.run("replicas hold identical records", replicas_identical)
    checks.run("histories ordered, newest seq matches", seqs_dense_and_histories_ordered)
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
