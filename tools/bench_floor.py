#!/usr/bin/env python3
"""The floor under one replicated put on this machine: what the cluster's fixed stack costs
before any Raft, storage or Merkle work is done.

A put sent to the leader of a 3-node cluster crosses, at the least: an HTTP round trip through
Waitress with a hop onto the node's uvloop thread and back, one node-to-node round trip over the
transport (the entry out to a follower, its ack back), and the follower's fsync of the entry
(the leader's own fsync runs meanwhile). This tool measures each of those alone, one at a time,
with nothing of Scribe's own code in them, and adds up their medians:

  http        PUT round trips to Waitress serving a WSGI app that only answers (one client in
              this process, one connection, the server in a child process with the node's
              thread count)
  http + hop  the same, with the app handing each request to a uvloop thread and waiting for the
              answer on a concurrent Future (the node runtime's pattern)
  transport   round trip of a 100-byte frame between two processes (tools/bench_transport.py)
  fsync       append 100 bytes and fsync, with --writers processes doing so at once on the same
              disk (every node of a cluster on one host fsyncs each entry)

    python tools/bench_floor.py
    python tools/bench_floor.py --transport shm --writers 3 --dir /path/on/the/cluster/disk --json
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.client import HTTPConnection

_TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_TOOLS_DIR)
for _path in (_REPO_ROOT, _TOOLS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import bench_transport  # noqa: E402
import uvloop  # noqa: E402
from waitress.server import create_server  # noqa: E402

import transports  # noqa: E402
from scribe.node.limits import HTTP_THREADS  # noqa: E402

VALUE_BYTES = 100
WARMUP_REQUESTS = 50
CHILD_READY_TIMEOUT_S = 20.0
_ANSWER = b'{"key":"k","seq":1,"index":1}'
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_ANSWER)))]


# ---- the HTTP server child ---------------------------------------------------------------------


def _wsgi_app(hop_loop: asyncio.AbstractEventLoop):
    """Answers every request at once; under /hop/ it first goes through hop_loop and back."""

    def on_loop(future: concurrent.futures.Future) -> None:
        future.set_result(None)

    def app(environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        if environ["PATH_INFO"].startswith("/hop/"):
            future: concurrent.futures.Future = concurrent.futures.Future()
            hop_loop.call_soon_threadsafe(on_loop, future)
            future.result()
        start_response("200 OK", _HEADERS)
        return [_ANSWER]

    return app


def http_child() -> None:
    """Serve the WSGI app on a free port; print the port; run until killed."""
    loop = uvloop.new_event_loop()
    threading.Thread(target=loop.run_forever, name="hop-loop", daemon=True).start()
    server = create_server(_wsgi_app(loop), host="127.0.0.1", port=0, threads=HTTP_THREADS)
    print(server.effective_port, flush=True)
    server.run()


def round_trips(port: int, path: str, count: int) -> list[float]:
    """Seconds per PUT round trip over one kept-alive connection."""
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    body = b"v" * VALUE_BYTES
    times = []
    try:
        for i in range(WARMUP_REQUESTS + count):
            started = time.perf_counter()
            conn.request("PUT", path, body=body)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"PUT {path} answered {response.status}")
            if i >= WARMUP_REQUESTS:
                times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return times


def measure_http(count: int) -> dict[str, list[float]]:
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--http-child"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port_line = _read_line(child, CHILD_READY_TIMEOUT_S)
        port = int(port_line)
        return {
            "http": round_trips(port, "/kv/k", count),
            "http + hop": round_trips(port, "/hop/k", count),
        }
    finally:
        child.kill()
        child.wait()


def _read_line(child: subprocess.Popen, timeout_s: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result or not result[0].strip():
        raise RuntimeError("the HTTP server child did not start")
    return result[0]


# ---- fsync ---------------------------------------------------------------------------------


def _fsync_writer(path: str, count: int, start: multiprocessing.Event, out) -> None:
    record = b"r" * VALUE_BYTES
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        start.wait()
        for _ in range(count):
            started = time.perf_counter()
            os.write(fd, record)
            os.fsync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    out.send(times)
    out.close()


def measure_fsync(directory: str, writers: int, count: int) -> list[float]:
    """Seconds per 100-byte append + fsync, `writers` processes at once, one file each."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    with tempfile.TemporaryDirectory(prefix="bench-floor-", dir=directory) as run_dir:
        procs, pipes = [], []
        for i in range(writers):
            receive, send = ctx.Pipe(duplex=False)
            path = os.path.join(run_dir, f"writer-{i}.log")
            proc = ctx.Process(target=_fsync_writer, args=(path, count, start, send))
            proc.start()
            send.close()
            procs.append(proc)
            pipes.append(receive)
        start.set()
        times: list[float] = []
        for receive in pipes:
            times.extend(receive.recv())
        for proc in procs:
            proc.join()
    return times


# ---- report --------------------------------------------------------------------------------


def _quantile_ms(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def summarize(name: str, times: list[float]) -> dict:
    return {
        "step": name,
        "samples": len(times),
        "p50_ms": round(statistics.median(times) * 1000.0, 3),
        "p99_ms": round(_quantile_ms(times, 0.99), 3),
    }


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure the fixed costs under one replicated put (HTTP through Waitress, "
        "the hop onto the Raft loop, a transport round trip, an fsync) and add up their medians.",
    )
    parser.add_argument(
        "--requests",
        type=positive,
        default=2000,
        help="HTTP round trips each (default: %(default)s)",
    )
    parser.add_argument(
        "--pings", type=positive, default=2000, help="transport round trips (default: %(default)s)"
    )
    parser.add_argument(
        "--syncs", type=positive, default=500, help="fsyncs per writer (default: %(default)s)"
    )
    parser.add_argument(
        "--writers",
        type=positive,
        default=3,
        help="processes fsyncing at once, one per node (default: %(default)s)",
    )
    parser.add_argument(
        "--transport",
        default="tcp",
        choices=[k for k in transports.KINDS if k != "memory"],
        help="node-to-node transport to time (default: %(default)s)",
    )
    parser.add_argument(
        "--dir",
        default=tempfile.gettempdir(),
        help="directory on the disk the nodes use, for the fsync step (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--http-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.http_child:
        http_child()
        return 0
    if not os.path.isdir(args.dir) or not os.access(args.dir, os.W_OK):
        parser.error(f"--dir {args.dir!r} is not a writable directory")

    rows = [summarize(name, times) for name, times in measure_http(args.requests).items()]
    transport_args = argparse.Namespace(pings=args.pings, small_frames=1, large_frames=1)
    rtt = uvloop.run(bench_transport.bench_kind(args.transport, transport_args))
    rows.append(
        {
            "step": f"transport {args.transport} round trip",
            "samples": args.pings,
            "p50_ms": round(rtt["p50_us"] / 1000.0, 3),
            "p99_ms": round(rtt["p99_us"] / 1000.0, 3),
        }
    )
    fsync_name = f"fsync, {args.writers} writers at once"
    rows.append(summarize(fsync_name, measure_fsync(args.dir, args.writers, args.syncs)))
    by_step = {r["step"]: r for r in rows}
    floor_ms = round(sum(by_step[s]["p50_ms"] for s in by_step if s != "http"), 3)
    if args.json:
        print(json.dumps({"steps": rows, "floor_p50_ms": floor_ms, "transport": args.transport}))
        return 0
    print(f"{'step':<34} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8}")
    print("-" * 61)
    for r in rows:
        print(f"{r['step']:<34} {r['samples']:>8,} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f}")
    print("-" * 61)
    print(
        f"floor of one put at 1 client (http + hop, one round trip, one fsync): {floor_ms:.3f} ms "
        "p50, before any Raft, storage or Merkle work"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
