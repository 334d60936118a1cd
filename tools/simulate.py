"""Run the seeded Raft simulator: replay one seed (optionally traced) or sweep many.

python tools/simulate.py --seed 42 --nodes 3 --verbose     # replay one run with a trace
python tools/simulate.py --seeds 100000 --nodes 5          # sweep, tqdm progress, seeds/s
python tools/simulate.py --seeds 1000 --mutation double_vote   # how fast is a bug caught?
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe.raft.config import KNOWN_BUGS  # noqa: E402
from scribe.raft.sim import SimulationFailure, run_seed  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="replay exactly this seed")
    parser.add_argument("--seeds", type=int, default=100, help="number of seeds to sweep")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed of the sweep")
    parser.add_argument("--nodes", type=int, default=3, choices=(1, 2, 3, 4, 5, 6, 7))
    parser.add_argument(
        "--mutation", action="append", default=[], choices=sorted(KNOWN_BUGS),
        help="inject a known bug into the core (repeatable)",
    )  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="print the event trace")
    parser.add_argument(
        "--keep-going", action="store_true", help="sweep on after a failure and count them"
    )
    args = parser.parse_args(argv)
    bugs = frozenset(args.mutation)

    if args.seed is not None:
        try:
            stats = run_seed(args.seed, nodes=args.nodes, bugs=bugs, verbose=args.verbose)
        except SimulationFailure as exc:
            print(f"FAILED: {exc}")
            return 1
        print(f"seed {args.seed} ok: {stats}")
        return 0

    from tqdm import tqdm

    failures = []
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    progress = tqdm(seeds, unit="seed", desc=f"{args.nodes} nodes")
    for seed in progress:
        try:
            run_seed(seed, nodes=args.nodes, bugs=bugs)
        except SimulationFailure as exc:
            failures.append(seed)
            if not args.keep_going:
                progress.close()
                print(f"FAILED after {len(failures) and seed - args.first_seed + 1} seeds: {exc}")
                return 1
    elapsed = time.perf_counter() - started
    print(
        f"{args.seeds} seeds, {args.nodes} nodes, {len(failures)} failures, "
        f"{args.seeds / elapsed:.1f} seeds/s"
    )
    if failures:
        print(f"first failing seeds: {failures[:20]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
