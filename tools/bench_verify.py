"""Verification figures of an embedded ledger: prove, consistency, GET /verify over HTTP, leaf-hash
bytes per record on disk.

    .venv/bin/python tools/bench_verify.py [--records 1000000] [--samples 2000] [--dir DIR]

Each figure is the median (and p99) of `--samples` calls on random keys / sizes, after the first
call built the tree (the first tree head after opening hashes every leaf pair: reported separately).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe import Ledger  # noqa: E402
from scribe.client import Client  # noqa: E402
from scribe.http import LedgerBackend, create_app, start_server  # noqa: E402
from scribe.merkle import verify_consistency, verify_inclusion  # noqa: E402

BATCH_RECORDS = 10_000
KEYS = 100_000


def _stats(samples_s: list[float]) -> str:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms"


def fill(led: Ledger, records: int) -> None:
    started = time.perf_counter()
    seq = 0
    while seq < records:
        n = min(BATCH_RECORDS, records - seq)
        led.apply_batch([(f"key:{(seq + i) % KEYS:06d}", f"value-{seq + i}") for i in range(n)])
        seq += n
    led.flush()
    print(f"wrote {records:,} records in {time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dir", help="ledger directory (default: a temporary one)")
    args = parser.parse_args(argv)
    rng = random.Random(1)
    path = args.dir or tempfile.mkdtemp(prefix="bench-verify-")
    led = Ledger(os.path.join(path, "ledger"))
    try:
        if len(list(led.records(0, 1))) == 0:
            fill(led, args.records)
        started = time.perf_counter()
        size = led.tree_head().size
        print(
            f"first tree head (builds the Merkle tree of {size:,} leaves): "
            f"{time.perf_counter() - started:.2f} s"
        )
        keys = [f"key:{rng.randrange(min(KEYS, size)):06d}" for _ in range(args.samples)]

        head = led.tree_head()
        samples = []
        for key in keys:
            t = time.perf_counter()
            proof = led.prove(key)
            samples.append(time.perf_counter() - t)
        assert verify_inclusion(proof, head)
        print(
            f"prove (inclusion proof of a key's newest record), {size:,} records: {_stats(samples)}"
        )

        samples = []
        for _ in range(args.samples):
            first = rng.randrange(1, size)
            t = time.perf_counter()
            path_ = led.consistency(first, size)
            samples.append(time.perf_counter() - t)
        assert verify_consistency(first, size, _root(led, first), head.root, path_)
        print(f"consistency(random first, {size:,}): {_stats(samples)}")

        backend = LedgerBackend(led)
        server = start_server(create_app(backend))
        try:
            with Client(server.url) as c:
                c.verify(keys[0])  # warm: signing key, connection
                samples = []
                for key in keys:
                    t = time.perf_counter()
                    c.verify_raw(key)
                    samples.append(time.perf_counter() - t)
                print(
                    f"GET /verify/<key> over HTTP (waitress, loopback, keep-alive): {_stats(samples)}"
                )
                samples = []
                for _ in range(min(args.samples, 500)):
                    t = time.perf_counter()
                    c.tree_head()
                    samples.append(time.perf_counter() - t)
                print(f"GET /tree/head over HTTP: {_stats(samples)}")
        finally:
            server.stop()

        hashes_bytes = os.path.getsize(os.path.join(led.path, "leaves.hashes"))
        segment_bytes = sum(
            os.path.getsize(os.path.join(led.path, n))
            for n in os.listdir(led.path)
            if n.endswith(".seg")
        )
        print(
            f"leaf-hash storage on disk: {hashes_bytes / size:.1f} bytes per record "
            f"({hashes_bytes:,} bytes of leaves.hashes for {size:,} records; segments hold "
            f"{segment_bytes / size:.1f} bytes per record)"
        )
    finally:
        led.close()
    return 0


def _root(led: Ledger, size: int) -> bytes:
    """The root of the first `size` records, from the records themselves (an independent check)."""
    from scribe.merkle import MerkleTree

    return MerkleTree(b"".join(r.leaf_hash() for r in led.records(0, size))).root()


if __name__ == "__main__":
    sys.exit(main())
