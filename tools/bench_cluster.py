#!/usr/bin/env python3
"""Closed-loop HTTP load on a running Scribe cluster (and, for comparison, on etcd).

Each client thread keeps one keep-alive connection (http.client) and sends its next request as soon
as the previous one is answered. Prints ops/s and p50/p99/p99.9 latency.

    python tools/bench_cluster.py --clients 16 --duration 10 --workload put
    python tools/bench_cluster.py --workload get --nodes http://127.0.0.1:8001,http://127.0.0.1:8002
    python tools/bench_cluster.py --leader-only --workload mixed
    python tools/bench_cluster.py --etcd http://127.0.0.1:2379 --workload put   # both, same run
    python tools/bench_cluster.py --etcd http://127.0.0.1:2379 --clients 1 --rounds 5 --duration 2
    python tools/bench_cluster.py --workload batch --batch-ops 100 --clients 4
    python tools/bench_cluster.py --pids $(pgrep -d, -f scribe.node)   # + CPU per node

Workloads: put (PUT /kv/<key>), get (GET /kv/<key> of preloaded keys, linearizable), mixed (half
each), batch (POST /batch of --batch-ops puts; ops/s counts operations, latency is per request).
With --etcd (one URL or a comma-separated list) the same workload also runs against etcd's v3 JSON
gateway (POST /v3/kv/put, /v3/kv/range, and /v3/kv/txn for a batch; base64 keys and values), one
after the other; --leader-only then sends etcd's load to its leader too, --followers-only to its
followers. The "to" column says which role the clients' nodes have: spread load with one client
goes to node 1 only, which may lead in one system and follow in the other.

With --rounds N each system runs N timed rounds of --duration seconds, the two systems taking
turns in the order S E, E S, S E, ... so that a machine that gets slower or faster during the run
weighs on both alike. Each system's row pools its rounds (all latencies, all operations over all
its timed seconds); the scribe row also gives the ratio of the pooled rates and of each round's
pair, so one noisy moment shows as one outlying round instead of moving the whole comparison.

With --pids (and --etcd-pids) it also reports, per process, the CPU used and the context
switches made during the timed run, per operation; a Scribe node's CPU is split into its Raft
loop (main thread), its HTTP threads and its ZeroMQ I/O thread (Linux /proc).
"""

from __future__ import annotations

import abc
import argparse
import base64
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import NamedTuple

from tqdm import tqdm

DEFAULT_NODES = "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003"
PRELOAD_KEYS_DEFAULT = 1000
KEYS_PER_CLIENT_ROUND = 10_000_000  # each client of each round writes keys of its own range
HTTP_TIMEOUT_S = 30


class Target(abc.ABC):
    """One system under test: how to put and get over an http.client connection."""

    name = ""

    @abc.abstractmethod
    def put(self, conn: http.client.HTTPConnection, key: bytes, value: bytes) -> bool:
        """Write key=value; True when acknowledged."""

    @abc.abstractmethod
    def get(self, conn: http.client.HTTPConnection, key: bytes) -> bool:
        """Read key; True when answered (found or not)."""

    @abc.abstractmethod
    def batch(self, conn: http.client.HTTPConnection, keys: list[bytes], value: bytes) -> bool:
        """Write every key=value atomically in one request; True when acknowledged."""


class ScribeTarget(Target):
    name = "scribe"

    def __init__(self, api_token: str | None = None) -> None:
        self._auth = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        self._json = {"Content-Type": "application/json", **self._auth}

    def put(self, conn, key, value):
        conn.request(
            "PUT", "/kv/" + urllib.parse.quote(key, safe=""), body=value, headers=self._auth
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200

    def get(self, conn, key):
        conn.request("GET", "/kv/" + urllib.parse.quote(key, safe=""))
        resp = conn.getresponse()
        resp.read()
        return resp.status in (200, 404)

    def batch(self, conn, keys, value):
        text = value.decode()
        body = json.dumps({"ops": [{"key": k.decode(), "value": text} for k in keys]})
        conn.request("POST", "/batch", body=body, headers=self._json)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200


class EtcdTarget(Target):
    name = "etcd"
    _headers = {"Content-Type": "application/json"}

    def put(self, conn, key, value):
        body = json.dumps(
            {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()}
        )
        conn.request("POST", "/v3/kv/put", body=body, headers=self._headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200

    def get(self, conn, key):
        body = json.dumps({"key": base64.b64encode(key).decode()})
        conn.request("POST", "/v3/kv/range", body=body, headers=self._headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200

    def batch(self, conn, keys, value):
        encoded = base64.b64encode(value).decode()
        puts = [
            {"requestPut": {"key": base64.b64encode(k).decode(), "value": encoded}} for k in keys
        ]
        conn.request(
            "POST", "/v3/kv/txn", body=json.dumps({"success": puts}), headers=self._headers
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200


@dataclass
class ClientStats:
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0


def _connect(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=HTTP_TIMEOUT_S)


def _key(key_size: int, i: int) -> bytes:
    """A distinct key per i: the digits are kept whole (cut from the front when too long)."""
    key = f"bench:{i}".encode()
    return key.ljust(key_size, b"k") if len(key) <= key_size else key[-key_size:]


def scribe_leader(urls: list[str]) -> str | None:
    """The URL of the Scribe node that leads, or None when no node knows one."""
    for url in urls:
        conn = _connect(url)
        try:
            conn.request("GET", "/cluster/leader")
            doc = json.loads(conn.getresponse().read())
        except (OSError, ValueError):
            continue
        finally:
            conn.close()
        if doc.get("url"):
            return str(doc["url"]).rstrip("/")
    return None


def etcd_leader(urls: list[str]) -> str | None:
    """The URL of the etcd member that leads (maintenance/status names it by member id), or None."""
    for url in urls:
        conn = _connect(url)
        try:
            conn.request("POST", "/v3/maintenance/status", body="{}")
            doc = json.loads(conn.getresponse().read())
        except (OSError, ValueError):
            continue
        finally:
            conn.close()
        if doc.get("leader") and doc.get("leader") == doc.get("header", {}).get("member_id"):
            return url
    return None


def choose_targets(
    system: str, urls: list[str], leader: str | None, args: argparse.Namespace
) -> tuple[list[str], str]:
    """The URLs the clients talk to (client n to the n-th, round robin) and what they are:
    "leader", "followers", or for spread load the roles of the nodes that get clients (with one
    client, spread load is node 1 only, which may be a follower in one system and the leader in
    the other: --leader-only and --followers-only compare like with like)."""
    if (args.leader_only or args.followers_only) and leader is None:
        raise SystemExit(f"bench_cluster: no {system} node knows a leader")
    if args.leader_only:
        return [leader], "leader"
    if args.followers_only:
        followers = [u for u in urls if u != leader]
        if not followers:
            raise SystemExit(f"bench_cluster: {system} has no follower among {', '.join(urls)}")
        return followers, "followers"
    used = urls[: min(args.clients, len(urls))]
    roles = ["?" if leader is None else "L" if u == leader else "F" for u in used]
    if len(used) == 1:
        return urls, {"L": "leader", "F": "follower"}.get(roles[0], "node 1")
    return urls, f"all ({''.join(roles)})"


def preload(target: Target, url: str, args: argparse.Namespace, value: bytes) -> None:
    conn = _connect(url)
    try:
        for i in range(args.preload_keys):
            if not target.put(conn, _key(args.key_size, i), value):
                raise SystemExit(f"bench_cluster: preload put {i} to {url} failed")
    finally:
        conn.close()


# ---- CPU accounting (Linux /proc) --------------------------------------------------------------

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class ThreadSample:
    user_s: float = 0.0
    sys_s: float = 0.0
    ctx_switches: int = 0

    def __sub__(self, other: ThreadSample) -> ThreadSample:
        return ThreadSample(
            self.user_s - other.user_s,
            self.sys_s - other.sys_s,
            self.ctx_switches - other.ctx_switches,
        )

    def __add__(self, other: ThreadSample) -> ThreadSample:
        return ThreadSample(
            self.user_s + other.user_s,
            self.sys_s + other.sys_s,
            self.ctx_switches + other.ctx_switches,
        )


def _thread_kind(pid: int, tid: int, comm: str) -> str:
    if tid == pid:
        return "loop"  # a node runs its asyncio (Raft) loop on the main thread
    if comm.startswith("ZMQbg"):
        return "zeromq"
    return "http"  # Waitress's server thread and workers (and any other Python thread)


def sample_process(pid: int) -> dict[str, ThreadSample]:
    """CPU time and context switches of every thread of pid, summed by kind of thread (threads
    that ended since the last sample are missing: the run's threads live as long as the node)."""
    kinds: dict[str, ThreadSample] = {}
    for name in os.listdir(f"/proc/{pid}/task"):
        tid = int(name)
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/stat") as f:
                stat = f.read()
            with open(f"{base}/status") as f:
                status = f.read()
            with open(f"{base}/comm") as f:
                comm = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = sum(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
        )
        sample = ThreadSample(
            int(fields[11]) / _TICKS_PER_S, int(fields[12]) / _TICKS_PER_S, switches
        )
        kind = _thread_kind(pid, tid, comm)
        kinds[kind] = kinds.get(kind, ThreadSample()) + sample
    return kinds


def process_label(pid: int) -> str:
    """The config file a node runs with (--config X), else the program name."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    program = os.path.basename(argv[0]) if argv and argv[0] else "?"
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":  # a Scribe node
            return os.path.basename(argv[i + 1])
        if arg == "--name":  # an etcd member
            return f"{program} {argv[i + 1]}"
    return program


class CpuMeter:
    """Samples processes before and after each timed part of a run (one per round)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._before: dict[int, dict[str, ThreadSample]] = {}
        # Summed over the timed parts (rounds) measured so far, by pid and kind of thread.
        self._used: dict[int, dict[str, ThreadSample]] = {pid: {} for pid in pids}
        self._exited: set[int] = set()

    def start(self) -> None:
        self._before = {}
        for pid in self.pids:
            try:
                self._before[pid] = sample_process(pid)
            except OSError:  # the process ended before this round
                self._exited.add(pid)

    def stop(self) -> None:
        """Ends one timed part: what each process used since start() adds to its total."""
        for pid, before in self._before.items():
            try:
                after = sample_process(pid)
            except OSError:  # the process ended during the round
                self._exited.add(pid)
                continue
            used = self._used[pid]
            for kind, sample in after.items():
                used[kind] = used.get(kind, ThreadSample()) + (
                    sample - before.get(kind, ThreadSample())
                )
        self._before = {}

    def rows(self, ops: int, wall_s: float) -> list[dict]:
        """Per process: CPU and context switches over every timed part, per operation."""
        rows = []
        for pid in self.pids:
            if pid in self._exited:
                rows.append({"pid": pid, "label": "(exited)"})
                continue
            kinds = self._used[pid]
            total = sum(kinds.values(), ThreadSample())
            cpu_s = total.user_s + total.sys_s
            per_op = 1e6 / ops if ops else float("nan")
            rows.append(
                {
                    "pid": pid,
                    "label": process_label(pid),
                    "cpu_s": round(cpu_s, 3),
                    "cores": round(cpu_s / wall_s, 3) if wall_s > 0 else 0.0,
                    "kernel_share": round(total.sys_s / cpu_s, 3) if cpu_s else 0.0,
                    "cpu_us_per_op": round(cpu_s * per_op, 2),
                    "ctx_switches_per_op": round(total.ctx_switches * per_op / 1e6, 2),
                    "threads_cpu_us_per_op": {
                        k: round((v.user_s + v.sys_s) * per_op, 2) for k, v in sorted(kinds.items())
                    },
                }
            )
        return rows


def parse_pids(text: str, flag: str) -> list[int]:
    pids = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"{flag}: {part!r} is not a process id")
        pid = int(part)
        if not os.path.isdir(f"/proc/{pid}/task"):
            raise ValueError(f"{flag}: no process {pid} (this needs Linux /proc)")
        pids.append(pid)
    if not pids:
        raise ValueError(f"{flag}: no process id given")
    return pids


class System(NamedTuple):
    """One system under test in this run: how to talk to it, where, and whose CPU to count."""

    target: Target
    urls: list[str]
    to: str  # the role of the nodes its clients talk to
    pids: list[int] | None


@dataclass
class Round:
    """The raw figures of one timed round against one system."""

    latencies_s: list[float]
    errors: int
    wall_s: float


def run(
    target: Target,
    urls: list[str],
    args: argparse.Namespace,
    meter: CpuMeter | None = None,
    round_no: int = 0,
) -> Round:
    """One timed round: args.clients closed-loop clients for args.duration seconds."""
    value = b"v" * args.value_size
    stats = [ClientStats() for _ in range(args.clients)]
    stop_at = time.perf_counter() + args.duration
    desc = f"{target.name} {args.workload}"
    if args.rounds > 1:
        desc += f" round {round_no + 1}/{args.rounds}"
    progress = tqdm(total=None, desc=desc, unit="op", disable=args.quiet)
    lock = threading.Lock()

    def client(n: int) -> None:
        rng = random.Random(f"client {n} round {round_no}")
        # Each client of each round writes keys of its own: no round overwrites another's.
        key_base = args.preload_keys + (round_no * args.clients + n) * KEYS_PER_CLIENT_ROUND
        conn = _connect(urls[n % len(urls)])
        mine = stats[n]
        counter = 0
        done = 0
        try:
            while time.perf_counter() < stop_at:
                if args.workload == "batch":
                    first = key_base + counter
                    keys = [_key(args.key_size, first + i) for i in range(args.batch_ops)]
                    counter += args.batch_ops
                    t0 = time.perf_counter()
                    try:
                        ok = target.batch(conn, keys, value)
                    except (OSError, http.client.HTTPException):
                        ok = False
                        conn.close()
                        conn = _connect(urls[n % len(urls)])
                elif args.workload == "put" or (args.workload == "mixed" and rng.random() < 0.5):
                    key = _key(args.key_size, key_base + counter)
                    counter += 1
                    op = target.put
                    t0 = time.perf_counter()
                    try:
                        ok = op(conn, key, value)
                    except (OSError, http.client.HTTPException):
                        ok = False
                        conn.close()
                        conn = _connect(urls[n % len(urls)])
                else:
                    key = _key(args.key_size, rng.randrange(args.preload_keys))
                    t0 = time.perf_counter()
                    try:
                        ok = target.get(conn, key)
                    except (OSError, http.client.HTTPException):
                        ok = False
                        conn.close()
                        conn = _connect(urls[n % len(urls)])
                elapsed = time.perf_counter() - t0
                if ok:
                    mine.latencies_s.append(elapsed)
                else:
                    mine.errors += 1
                done += 1
                if done == 100:
                    with lock:
                        progress.update(done)
                    done = 0
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
    if meter is not None:
        meter.start()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall_s = time.perf_counter() - started
    if meter is not None:
        meter.stop()
    progress.close()
    latencies = [x for s in stats for x in s.latencies_s]
    return Round(latencies, sum(s.errors for s in stats), wall_s)


def round_order(rounds: int, systems: int) -> list[tuple[int, int]]:
    """(round, system) pairs in the order they run: with two systems, S E then E S then S E...,
    so that a drift of the machine's speed during the run falls on both alike."""
    order = []
    for r in range(rounds):
        turn = list(range(systems))
        if r % 2:
            turn.reverse()
        order.extend((r, system) for system in turn)
    return order


def pool(name: str, args: argparse.Namespace, rounds: list[Round]) -> dict:
    """One system's row: every round's latencies and operations over all its timed seconds."""
    latencies = sorted(x for r in rounds for x in r.latencies_s)
    wall_s = sum(r.wall_s for r in rounds)
    row = summarize(name, args, latencies, sum(r.errors for r in rounds), wall_s)
    row["rounds"] = len(rounds)
    row["round_ops_per_s"] = [round(ops_per_s(args, r), 1) for r in rounds]
    return row


def ops_per_s(args: argparse.Namespace, r: Round) -> float:
    return len(r.latencies_s) * _ops_per_request(args) / r.wall_s if r.wall_s > 0 else 0.0


def compare(scribe: dict, etcd: dict) -> dict:
    """Scribe's rate over etcd's: pooled, and for each round's pair (min, median, max)."""
    pairs = [
        s / e
        for s, e in zip(scribe["round_ops_per_s"], etcd["round_ops_per_s"], strict=True)
        if e > 0
    ]
    pooled = scribe["ops_per_s"] / etcd["ops_per_s"] if etcd["ops_per_s"] > 0 else float("nan")
    nan = float("nan")
    return {
        "ratio_vs_etcd": round(pooled, 3),
        "round_ratios_vs_etcd": [round(x, 3) for x in pairs],
        "round_ratio_min": round(min(pairs), 3) if pairs else nan,
        "round_ratio_median": round(statistics.median(pairs), 3) if pairs else nan,
        "round_ratio_max": round(max(pairs), 3) if pairs else nan,
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def _ops_per_request(args: argparse.Namespace) -> int:
    return args.batch_ops if args.workload == "batch" else 1


def summarize(name: str, args, latencies: list[float], errors: int, wall_s: float) -> dict:
    ops = len(latencies) * _ops_per_request(args)
    return {
        "system": name,
        "workload": args.workload,
        "clients": args.clients,
        "ops": ops,
        "errors": errors,
        "ops_per_s": ops / wall_s if wall_s > 0 else 0.0,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "p999_ms": _percentile(latencies, 0.999) * 1000,
    }


def print_table(rows: list[dict]) -> None:
    print(
        f"{'system':<8} {'workload':<8} {'clients':>7} {'ops':>8} {'errors':>6} "
        f"{'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9}  to"
    )
    for r in rows:
        print(
            f"{r['system']:<8} {r['workload']:<8} {r['clients']:>7} {r['ops']:>8} {r['errors']:>6} "
            f"{r['ops_per_s']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['p999_ms']:>9.2f}"
            f"  {r.get('to', '')}"
        )
    if any(str(r.get("to", "")).startswith("all") for r in rows):
        print("(to: the role of each node that gets clients, in order: L leader, F follower)")
    if rows and rows[0].get("rounds", 1) > 1:
        if len(rows) > 1:
            print(f"({rows[0]['rounds']} rounds of each system, taking turns; rows pool them)")
        else:
            print(f"({rows[0]['rounds']} rounds, pooled)")
    if "ratio_vs_etcd" in rows[0]:
        r = rows[0]
        line = f"scribe/etcd ops/s: {r['ratio_vs_etcd']:.2f}"
        if r["rounds"] > 1:
            line += (
                f" pooled; per round min {r['round_ratio_min']:.2f}, median "
                f"{r['round_ratio_median']:.2f}, max {r['round_ratio_max']:.2f}"
            )
        print(line)


def print_cpu(rows: list[dict]) -> None:
    for r in rows:
        if "cpu" not in r:
            continue
        split_note = "; loop, http, zeromq: CPU us/op of those threads"
        note = split_note if r["system"] == "scribe" else ""
        print(f"\n{r['system']} CPU during the run ({r['ops']:,} ops{note}):")
        print(
            f"{'pid':>8} {'process':<20} {'cores':>6} {'kernel':>7} {'CPU us/op':>9} "
            f"{'loop':>7} {'http':>7} {'zeromq':>7} {'cswitch/op':>10}"
        )
        for c in r["cpu"]:
            if "cpu_s" not in c:
                print(f"{c['pid']:>8} {c['label']:<20} exited during the run")
                continue
            threads = c["threads_cpu_us_per_op"]
            split = [
                f"{threads[k]:>7.1f}" if k in threads and r["system"] == "scribe" else f"{'-':>7}"
                for k in ("loop", "http", "zeromq")
            ]
            print(
                f"{c['pid']:>8} {c['label'][:20]:<20} {c['cores']:>6.2f} "
                f"{c['kernel_share']:>7.0%} {c['cpu_us_per_op']:>9.1f} {' '.join(split)} "
                f"{c['ctx_switches_per_op']:>10.2f}"
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--duration", type=float, default=10.0, help="seconds (of each round)")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="timed rounds per system, the systems taking turns (S E, E S, ...); rows pool them",
    )
    p.add_argument("--key-size", type=int, default=16, help="bytes")
    p.add_argument("--value-size", type=int, default=100, help="bytes")
    p.add_argument("--workload", choices=("put", "get", "mixed", "batch"), default="put")
    p.add_argument("--batch-ops", type=int, default=100, help="puts per /batch request")
    p.add_argument(
        "--preload-keys", type=int, default=PRELOAD_KEYS_DEFAULT, help="keys written before get"
    )
    p.add_argument("--nodes", default=DEFAULT_NODES, help="comma-separated node URLs")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--leader-only", action="store_true", help="send everything to the leader")
    where.add_argument(
        "--followers-only",
        action="store_true",
        help="send everything to the followers (client n to the n-th follower), in both systems",
    )
    p.add_argument(
        "--api-token",
        default=os.environ.get("SCRIBE_API_TOKEN"),
        help="bearer token for writes when the cluster has [security] api_token "
        "(default: $SCRIBE_API_TOKEN)",
    )
    p.add_argument("--etcd", help="also run the workload against etcd's JSON gateway at this URL")
    p.add_argument(
        "--pids",
        help="comma-separated pids of the Scribe node processes: report their CPU per op "
        "(e.g. $(pgrep -d, -f scribe.node); `launcher status` lists them too)",
    )
    p.add_argument("--etcd-pids", help="comma-separated pids of the etcd processes, likewise")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if (
        args.clients < 1
        or args.duration <= 0
        or args.rounds < 1
        or args.key_size < 1
        or args.preload_keys < 1
        or args.batch_ops < 1
    ):
        p.error(
            "--clients, --duration, --rounds, --key-size, --preload-keys and --batch-ops "
            "must be positive"
        )
    if args.value_size < 0:
        p.error("--value-size must be >= 0")
    if args.etcd_pids and not args.etcd:
        p.error("--etcd-pids needs --etcd")
    try:
        args.pids = parse_pids(args.pids, "--pids") if args.pids is not None else None
        args.etcd_pids = (
            parse_pids(args.etcd_pids, "--etcd-pids") if args.etcd_pids is not None else None
        )
    except ValueError as exc:
        p.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    urls = [u.strip().rstrip("/") for u in args.nodes.split(",") if u.strip()]
    urls, to = choose_targets("scribe", urls, scribe_leader(urls), args)
    systems = [System(ScribeTarget(args.api_token), urls, to, args.pids)]
    if args.etcd:
        etcd_urls = [u.strip().rstrip("/") for u in args.etcd.split(",") if u.strip()]
        etcd_urls, to = choose_targets("etcd", etcd_urls, etcd_leader(etcd_urls), args)
        systems.append(System(EtcdTarget(), etcd_urls, to, args.etcd_pids))
    if args.workload in ("get", "mixed"):
        value = b"v" * args.value_size
        for system in systems:
            preload(system.target, system.urls[0], args, value)
    meters = [CpuMeter(system.pids) if system.pids else None for system in systems]
    done: list[list[Round]] = [[] for _ in systems]
    for round_no, i in round_order(args.rounds, len(systems)):
        done[i].append(run(systems[i].target, systems[i].urls, args, meters[i], round_no))
    rows = []
    for system, rounds, meter in zip(systems, done, meters, strict=True):
        row = pool(system.target.name, args, rounds)
        row["to"] = system.to
        if meter is not None:
            row["cpu"] = meter.rows(row["ops"], sum(r.wall_s for r in rounds))
        rows.append(row)
    if len(rows) == 2:
        rows[0].update(compare(rows[0], rows[1]))
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        print_table(rows)
        print_cpu(rows)
    return 1 if any(r["ops"] == 0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
