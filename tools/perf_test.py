"""Measure scribe.Ledger throughput (PUT, GET, MIXED) and compare it with SQLite and LMDB.

    .venv/bin/python tools/perf_test.py [--ops 100,1000,5000,10000] [--repeat 3] [--dir DIR]
                                        [--no-peers] [--sustained 10000] [--open-test N]

For each operation count N, on a fresh store in a fresh directory each run:
  PUT    one batch of N puts, then one flush (fsync), timed together
  GET    N gets of the keys just written
  MIXED  N operations alternating put and get (unbatched), then one flush (fsync), timed together
Keys are b"key{i}" and values b"value{i}", generated and encoded to bytes before timing (as in the
seed). Every figure is the best of --repeat runs. Results are checked (untimed) after each run.
Peers do the same work with their own idioms: SQLite (WAL, synchronous=FULL, WITHOUT ROWID table,
executemany in one transaction) and LMDB (sync on commit, putmulti in one write transaction).

--open-test N writes N records (16-byte keys, 100-byte values) and then, in a fresh process so the
writer's memory does not count, times `Ledger(path)` and reports the process's resident memory.
Figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scribe import Ledger  # noqa: E402
from scribe.limits import CACHE_BYTES_DEFAULT  # noqa: E402

DEFAULT_OPS = "100,1000,5000,10000"
DEFAULT_REPEAT = 3
DEFAULT_SUSTAINED_OPS = 10_000
SUSTAINED_FLUSH_EVERY_OPS = 100
LMDB_MAP_BYTES = 1 << 30  # address space reserved for the LMDB file; it grows only as needed
OPEN_TEST_BATCH = 10_000
OPEN_TEST_KEY_BYTES = 16
OPEN_TEST_VALUE_BYTES = 100
WORKLOADS = ("PUT", "GET", "MIXED")


# ---- stores under test: the same four workloads in each store's own idiom ----------------------


class ScribeStore:
    name = "Scribe"
    put_idiom = "apply_batch + flush()"
    cache_bytes = CACHE_BYTES_DEFAULT  # set from --cache-bytes

    def __init__(self, path: str):
        self.led = Ledger(path, max_cache_size=self.cache_bytes)

    def put_batch(self, items: list[tuple[bytes, bytes]]) -> None:
        self.led.apply_batch(items)
        self.led.flush()

    def get_all(self, keys: list[bytes]) -> None:
        get = self.led.get
        for k in keys:
            get(k)

    def mixed(self, pairs: list[tuple[bytes, bytes]], flush_every_pairs: int) -> None:
        put, get, flush = self.led.put, self.led.get, self.led.flush
        for i, (k, v) in enumerate(pairs, 1):
            put(k, v)
            get(k)
            if i % flush_every_pairs == 0:
                flush()
        flush()

    def read(self, key: bytes) -> bytes | None:
        return self.led.get(key)

    def close(self) -> None:
        self.led.close()


class SqliteStore:
    name = "SQLite"
    put_idiom = "executemany in one transaction + COMMIT"
    _insert = "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)"
    _select = "SELECT v FROM kv WHERE k = ?"

    def __init__(self, path: str):
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so each timed region is explicit.
        self.db = sqlite3.connect(os.path.join(path, "bench.sqlite"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")

    def put_batch(self, items: list[tuple[bytes, bytes]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(self._insert, items)
        self.db.execute("COMMIT")

    def get_all(self, keys: list[bytes]) -> None:
        execute, sql = self.db.execute, self._select
        for k in keys:
            execute(sql, (k,)).fetchone()

    def mixed(self, pairs: list[tuple[bytes, bytes]], flush_every_pairs: int) -> None:
        execute, ins, sel = self.db.execute, self._insert, self._select
        execute("BEGIN")
        for i, (k, v) in enumerate(pairs, 1):
            execute(ins, (k, v))
            execute(sel, (k,)).fetchone()
            if i % flush_every_pairs == 0:
                execute("COMMIT")
                execute("BEGIN")
        execute("COMMIT")

    def read(self, key: bytes) -> bytes | None:
        row = self.db.execute(self._select, (key,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.db.close()


class LmdbStore:
    name = "LMDB"
    put_idiom = "putmulti in one write transaction, sync on commit"

    def __init__(self, path: str):
        import lmdb

        self.env = lmdb.open(path, map_size=LMDB_MAP_BYTES, sync=True, metasync=True)

    def put_batch(self, items: list[tuple[bytes, bytes]]) -> None:
        with self.env.begin(write=True) as txn:
            txn.cursor().putmulti(items)

    def get_all(self, keys: list[bytes]) -> None:
        with self.env.begin() as txn:
            get = txn.get
            for k in keys:
                get(k)

    def mixed(self, pairs: list[tuple[bytes, bytes]], flush_every_pairs: int) -> None:
        for start in range(0, max(len(pairs), 1), flush_every_pairs):
            with self.env.begin(write=True) as txn:
                put, get = txn.put, txn.get
                for k, v in pairs[start : start + flush_every_pairs]:
                    put(k, v)
                    get(k)

    def read(self, key: bytes) -> bytes | None:
        with self.env.begin() as txn:
            return txn.get(key)

    def close(self) -> None:
        self.env.close()


STORES = {cls.name: cls for cls in (ScribeStore, SqliteStore, LmdbStore)}


# ---- measuring ---------------------------------------------------------------------------------


@dataclass
class Figure:
    ops: int
    seconds: float

    @property
    def ops_per_sec(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Workload:
    """Pre-generated data for N operations, so generating it is never timed."""

    n: int
    keys: list[bytes]
    values: list[bytes]
    items: list[tuple[bytes, bytes]]
    mixed_pairs: list[tuple[bytes, bytes]]  # N // 2 (put, get) pairs (at least one)

    @classmethod
    def make(cls, n: int) -> Workload:
        keys = [f"key{i}".encode() for i in range(n)]
        values = [f"value{i}".encode() for i in range(n)]
        items = list(zip(keys, values, strict=True))
        return cls(n, keys, values, items, items[: max(1, n // 2)])


class Scratch:
    """Fresh subdirectories of one base directory (so every store runs on the same filesystem)."""

    def __init__(self, base: str | None):
        if base is not None:
            os.makedirs(base, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="scribe-perf-", dir=base)
        self._count = 0

    def fresh(self) -> str:
        self._count += 1
        path = os.path.join(self.root, f"run{self._count}")
        os.mkdir(path)
        return path

    def remove(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _timed(fn: Callable[..., object], *args: object) -> float:
    gc.collect()  # start every timed region with the same (empty) garbage backlog
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _check(store, keys: list[bytes], values: list[bytes], what: str) -> None:
    """Untimed: every key must read back its value, or the figures measure a broken store."""
    for k, v in zip(keys, values, strict=True):
        got = store.read(k)
        if got != v:
            raise RuntimeError(f"{store.name} {what}: key {k!r} read back {got!r}, expected {v!r}")


def measure(store_cls, work: Workload, scratch: Scratch) -> dict[str, Figure]:
    """One run of PUT, GET (on the PUT's store) and MIXED (on a fresh store)."""
    n = work.n
    pairs = work.mixed_pairs
    path = scratch.fresh()
    store = store_cls(path)
    try:
        t_put = _timed(store.put_batch, work.items)
        t_get = _timed(store.get_all, work.keys)
        _check(store, work.keys, work.values, "PUT")
    finally:
        store.close()
        scratch.remove(path)
    path = scratch.fresh()
    store = store_cls(path)
    try:
        # MIXED flushes only once, at the end: a flush interval beyond the number of pairs.
        t_mixed = _timed(store.mixed, pairs, len(pairs) + 1)
        _check(store, work.keys[: len(pairs)], work.values[: len(pairs)], "MIXED")
    finally:
        store.close()
        scratch.remove(path)
    return {
        "PUT": Figure(n, t_put),
        "GET": Figure(n, t_get),
        "MIXED": Figure(2 * len(pairs), t_mixed),  # N rounded down to even (up, for N = 1)
    }


def measure_sustained(store_cls, work: Workload, scratch: Scratch) -> dict[str, Figure]:
    """One run of alternating put/get, unbatched, with a flush after every SUSTAINED_FLUSH_EVERY_OPS."""
    pairs = work.items[: max(1, work.n // 2)]
    path = scratch.fresh()
    store = store_cls(path)
    try:
        seconds = _timed(store.mixed, pairs, SUSTAINED_FLUSH_EVERY_OPS // 2)
        _check(store, work.keys[: len(pairs)], work.values[: len(pairs)], "sustained")
    finally:
        store.close()
        scratch.remove(path)
    return {"SUSTAINED": Figure(2 * len(pairs), seconds)}


def best_of(
    runs: Sequence[Callable[[], dict[str, Figure]]], repeat: int
) -> list[dict[str, Figure]]:
    """Call each run `repeat` times and keep the fastest figure of each workload.

    The runs are interleaved (A B C, A B C, ...) so a burst of load on a shared machine hits
    every store alike rather than only the one measured at that moment.
    """
    best: list[dict[str, Figure]] = [{} for _ in runs]
    for _ in range(repeat):
        for i, run in enumerate(runs):
            for workload, fig in run().items():
                if workload not in best[i] or fig.seconds < best[i][workload].seconds:
                    best[i][workload] = fig
    return best


# ---- reporting ---------------------------------------------------------------------------------


def _cell(fig: Figure) -> str:
    return f"{fig.ops_per_sec:>12,.0f}  " + f"({fig.seconds * 1e3:,.2f} ms)".rjust(13)


def print_table(title: str, rows: dict[int, dict[str, Figure]]) -> None:
    header = ["Ops", *(f"{w} (ops/sec, total ms)" for w in WORKLOADS)]
    body = [[f"{n:,}", *(_cell(figs[w]) for w in WORKLOADS)] for n, figs in rows.items()]
    _print_grid(title, header, body)


def print_ratio_table(title: str, ours: dict[int, dict[str, Figure]], peer) -> None:
    header = ["Ops", *WORKLOADS]
    body = [
        [f"{n:,}", *(f"{ours[n][w].ops_per_sec / peer[n][w].ops_per_sec:.2f}x" for w in WORKLOADS)]
        for n in ours
    ]
    _print_grid(title, header, body)


def _print_grid(title: str, header: list[str], body: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(f"\n{title}")
    print(rule)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print(rule.replace("-", "="))
    for row in body:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(rule)


def _filesystem(path: str) -> str:
    """The type of the filesystem holding path (from /proc/mounts), or 'unknown'."""
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1:3] for line in f]
    except OSError:
        return "unknown"
    path = os.path.realpath(path)
    best = ("", "unknown")
    for mount_point, fs_type in mounts:
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best[0]):
            best = (mount_point, fs_type)
    return best[1]


def _load_average() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def _print_preamble(scratch: Scratch, repeat: int, stores: Sequence[type]) -> None:
    title = "Scribe Ledger Performance Test"
    print(title)
    print("=" * len(title))
    fs = _filesystem(scratch.root)
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {_load_average()}; data under {scratch.root} ({fs})"
    )
    if fs in ("tmpfs", "ramfs"):
        print("WARNING: fsync is a no-op on this filesystem; use --dir on a real disk")
    print(
        'Keys b"key{i}", values b"value{i}", encoded to bytes before timing. '
        f"Each figure is the best of {repeat} runs, each on a fresh store; "
        "the stores' runs are interleaved."
    )
    print("  PUT   = one batch of N puts + one flush (fsync), timed together")
    print("  GET   = N gets of existing keys")
    print("  MIXED = N ops alternating put/get, unbatched, + one flush (fsync) at the end")
    for cls in stores:
        print(f"  {cls.name} PUT: {cls.put_idiom}")
    print(
        f"  Scribe value cache: {ScribeStore.cache_bytes:,} bytes (--cache-bytes; 0 makes every "
        "GET read its record from the segment file)"
    )
    print(
        "Scribe appends every put as a new version with a Merkle leaf; the peers overwrite in place."
    )


def run_throughput(args: argparse.Namespace) -> None:
    stores = [ScribeStore] if args.no_peers else [ScribeStore, SqliteStore, LmdbStore]
    if not args.no_peers:
        try:
            import lmdb  # noqa: F401
        except ImportError:
            print("lmdb is not installed (pip install lmdb): comparing with SQLite only")
            stores.remove(LmdbStore)
    scratch = Scratch(args.dir)
    try:
        _print_preamble(scratch, args.repeat, stores)
        results: dict[str, dict[int, dict[str, Figure]]] = {cls.name: {} for cls in stores}
        for n in args.ops:
            work = Workload.make(n)
            runs = [functools.partial(measure, cls, work, scratch) for cls in stores]
            for cls, figs in zip(stores, best_of(runs, args.repeat), strict=True):
                results[cls.name][n] = figs
        for cls in stores:
            print_table(cls.name, results[cls.name])
        for cls in stores[1:]:
            print_ratio_table(
                f"Scribe / {cls.name} (throughput ratio, above 1.00x means Scribe is faster)",
                results["Scribe"],
                results[cls.name],
            )
        if args.sustained > 0:
            print(
                f"\nSustained ({args.sustained:,} ops): alternating put/get, unbatched, with a flush "
                f"(fsync; a COMMIT for the peers) after every {SUSTAINED_FLUSH_EVERY_OPS} ops, "
                f"best of {args.repeat}"
            )
            work = Workload.make(args.sustained)
            figs = best_of(
                [functools.partial(measure_sustained, cls, work, scratch) for cls in stores],
                args.repeat,
            )
            for cls, fig in zip(stores, (f["SUSTAINED"] for f in figs), strict=True):
                print(
                    f"{cls.name:<7} Sustained ({fig.ops:,} ops) -> MIXED: "
                    f"{fig.ops_per_sec:,.0f} ops/sec ({fig.seconds * 1e3:.2f} ms total)"
                )
        print(f"\nLoad average at the end: {_load_average()}")
    finally:
        scratch.cleanup()


# ---- open test ---------------------------------------------------------------------------------

# Runs in a fresh interpreter: argv = repo root, ledger path, a key to read.
_OPEN_CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, sys.argv[1])
from scribe import Ledger

def rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # peak, in KiB on Linux

out = {"rss_before_kib": rss_kib()}
t0 = time.perf_counter()
led = Ledger(sys.argv[2])
out["open_s"] = time.perf_counter() - t0
out["rss_open_kib"] = rss_kib()
out["keys"] = len(led)
t0 = time.perf_counter()
found = led.get(sys.argv[3].encode())
out["first_get_s"] = time.perf_counter() - t0
out["found"] = found is not None
t0 = time.perf_counter()
head = led.tree_head()
out["tree_head_s"] = time.perf_counter() - t0
out["tree_size"] = head.size
out["rss_tree_kib"] = rss_kib()
led.close()
print(json.dumps(out))
"""


def _open_test_key(i: int) -> bytes:
    return f"k{i:0{OPEN_TEST_KEY_BYTES - 1}d}".encode()


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def run_open_test(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    n = args.open_test
    scratch = Scratch(args.dir)
    try:
        path = scratch.fresh()
        print(
            f"Open test: writing {n:,} records ({OPEN_TEST_KEY_BYTES}-byte keys, "
            f"{OPEN_TEST_VALUE_BYTES}-byte values) in batches of {OPEN_TEST_BATCH:,} to {path}"
        )
        t0 = time.perf_counter()
        with Ledger(path) as led, tqdm(total=n, unit="rec", unit_scale=True) as bar:
            for start in range(0, n, OPEN_TEST_BATCH):
                count = min(OPEN_TEST_BATCH, n - start)
                blob = os.urandom(OPEN_TEST_VALUE_BYTES * count)
                led.apply_batch(
                    (
                        _open_test_key(start + j),
                        blob[j * OPEN_TEST_VALUE_BYTES : (j + 1) * OPEN_TEST_VALUE_BYTES],
                    )
                    for j in range(count)
                )
                bar.update(count)
            led.flush()
        write_s = time.perf_counter() - t0
        print(
            f"Wrote {n:,} records in {write_s:.2f} s ({n / write_s:,.0f} records/s), "
            f"{_dir_bytes(path) / 2**20:,.1f} MiB on disk"
        )
        probe = _open_test_key(n // 2).decode()
        runs: list[dict] = []
        for _ in range(args.repeat):
            proc = subprocess.run(
                [sys.executable, "-c", _OPEN_CHILD, ROOT, path, probe],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"the open-test child failed:\n{proc.stderr}")
            runs.append(json.loads(proc.stdout))
        best = min(runs, key=lambda r: r["open_s"])
        if best["keys"] != n or not best["found"] or best["tree_size"] != n:
            raise RuntimeError(f"reopened ledger is wrong: {best}")
        each_ms = ", ".join(f"{r['open_s'] * 1e3:,.0f}" for r in runs)
        print(
            f"Ledger(path) open, in a fresh process: best {best['open_s'] * 1e3:,.0f} ms "
            f"of {len(runs)} ({each_ms} ms)"
        )
        print(f"  first get after open:   {best['first_get_s'] * 1e3:.2f} ms")
        print(
            f"  tree_head() after open: {best['tree_head_s'] * 1e3:,.0f} ms (builds the Merkle tree)"
        )
        mib = 1024
        print(
            f"  resident memory (VmRSS): {best['rss_before_kib'] / mib:,.1f} MiB after imports, "
            f"{best['rss_open_kib'] / mib:,.1f} MiB after open, "
            f"{best['rss_tree_kib'] / mib:,.1f} MiB after tree_head()"
        )
    finally:
        scratch.cleanup()


# ---- command line ------------------------------------------------------------------------------


def _ops_list(text: str) -> list[int]:
    try:
        ops = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}"
        ) from None
    if not ops or any(n < 1 for n in ops):
        raise argparse.ArgumentTypeError(f"operation counts must be positive integers: {text!r}")
    return ops


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _non_negative(text: str) -> int:
    return 0 if text.strip() == "0" else _positive(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--ops",
        type=_ops_list,
        default=_ops_list(DEFAULT_OPS),
        metavar="N,N,...",
        help=f"operation counts to measure (default: {DEFAULT_OPS})",
    )
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=DEFAULT_REPEAT,
        help=f"runs per measurement; the best is reported (default: {DEFAULT_REPEAT})",
    )
    parser.add_argument(
        "--dir",
        default=None,
        help="base directory for the stores' temporary directories (default: the system temp "
        "directory); put it on the disk you want to measure",
    )
    parser.add_argument("--no-peers", action="store_true", help="measure Scribe only")
    parser.add_argument(
        "--cache-bytes",
        type=_non_negative,
        default=CACHE_BYTES_DEFAULT,
        metavar="BYTES",
        help="Scribe's value cache (max_cache_size); 0 measures uncached reads "
        f"(default: {CACHE_BYTES_DEFAULT:,})",
    )
    parser.add_argument(
        "--sustained",
        type=_non_negative,
        default=DEFAULT_SUSTAINED_OPS,
        metavar="OPS",
        help=f"operations of the sustained test, 0 to skip (default: {DEFAULT_SUSTAINED_OPS})",
    )
    parser.add_argument(
        "--open-test",
        type=_positive,
        default=None,
        metavar="N",
        help="instead of the throughput tables: write N records, then time reopening the "
        "ledger in a fresh process and report its resident memory",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ScribeStore.cache_bytes = args.cache_bytes
    if args.open_test is not None:
        run_open_test(args)
    else:
        run_throughput(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
