"""Benchmark scribe.merkle.MerkleTree at a million leaves and print the figures.

    .venv/bin/python tools/bench_merkle.py [--leaves 1000000] [--calls 2000]

Prints: build time from existing leaf hashes, append throughput (with and without the
batched hashing the next root() triggers), median inclusion_proof / consistency_proof /
root(n) times over many calls at random sizes, and the RAM held by interior nodes.
Figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe.merkle import CACHE_MIN_HEIGHT, MerkleTree, verify_consistency, verify_inclusion_path

APPEND_BATCH = 10_000


def _leaf_hashes(count: int) -> bytes:
    """Distinct pseudo-random leaf hashes, cheaper to make than real SHA-256 leaves."""
    return random.Random(count).randbytes(32 * count)


def _median_us(fn, args_list) -> float:
    samples = []
    for args in args_list:
        t0 = time.perf_counter()
        fn(*args)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed operation")
    parser.add_argument("--cache-min-height", type=int, default=CACHE_MIN_HEIGHT)
    args = parser.parse_args()
    n = args.leaves
    rng = random.Random(7)
    leaves = _leaf_hashes(n + APPEND_BATCH)

    t0 = time.perf_counter()
    tree = MerkleTree(leaves[: 32 * n], cache_min_height=args.cache_min_height)
    build_s = time.perf_counter() - t0
    print(f"leaves                     {n:,} (cache_min_height {args.cache_min_height})")
    print(f"build from leaf hashes     {build_s * 1e3:.0f} ms")

    sha = hashlib.sha256
    probe = b"\x01" + leaves[:64]
    t0 = time.perf_counter()
    for _ in range(100_000):
        sha(probe).digest()
    sha_ns = (time.perf_counter() - t0) * 1e4
    print(f"raw SHA-256 of 65 bytes    {sha_ns:.0f} ns")

    extra = [leaves[32 * i : 32 * i + 32] for i in range(n, n + APPEND_BATCH)]
    t0 = time.perf_counter()
    for h in extra:
        tree.append(h)
    append_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree.root()
    hash_s = time.perf_counter() - t0
    print(
        f"append {APPEND_BATCH:,} leaves        {append_s * 1e3:.2f} ms "
        f"({APPEND_BATCH / append_s / 1e6:.1f} M/s), then batched hashing at root() "
        f"{hash_s * 1e3:.2f} ms"
    )
    tree.truncate(n)
    t0 = time.perf_counter()
    tree.extend(extra)
    extend_s = time.perf_counter() - t0
    print(f"extend {APPEND_BATCH:,} leaves        {extend_s * 1e3:.2f} ms")

    size = tree.size
    incl = [
        (i, s)
        for s in (rng.randint(1, size) for _ in range(args.calls))
        for i in [rng.randrange(s)]
    ]
    cons = [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(args.calls)]
    sizes = [(rng.randint(1, size),) for _ in range(args.calls)]
    print(f"inclusion_proof median     {_median_us(tree.inclusion_proof, incl):.0f} µs")
    print(f"consistency_proof median   {_median_us(tree.consistency_proof, cons):.0f} µs")
    print(f"root(n) median             {_median_us(tree.root, sizes):.0f} µs (random n)")

    index, at = incl[0]
    path = tree.inclusion_proof(index, at)
    leaf, root = tree.leaf_hash(index), tree.root(at)
    verify_us = _median_us(verify_inclusion_path, [(leaf, index, at, path, root)] * 200)
    first, second = cons[0]
    proof = tree.consistency_proof(first, second)
    r1, r2 = tree.root(first), tree.root(second)
    cverify_us = _median_us(verify_consistency, [(first, second, r1, r2, proof)] * 200)
    print(f"verify inclusion / consistency  {verify_us:.0f} / {cverify_us:.0f} µs")

    cache = tree.cache_bytes()
    print(
        f"interior-node cache RAM    {cache / 1e6:.2f} MB "
        f"({100 * cache / (32 * size):.1f} % of {32 * size / 1e6:.0f} MB of leaf hashes)"
    )


if __name__ == "__main__":
    main()
