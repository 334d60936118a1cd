"""`python -m launcher up | status | down | stop ID | start ID | kill ID` (DESIGN §8).

Exit codes: 0 success, 1 the cluster did not come up (a node died, no leader in time), 2 bad
arguments or a refused action (port in use, a cluster already running in DIR, unknown node).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import transports
from launcher import faults
from launcher.layout import (
    HOST,
    NODES_MAX,
    NODES_MIN,
    ClusterDir,
    ClusterSpec,
    LauncherError,
)
from launcher.procs import (
    POLL_INTERVAL_S,
    STOP_GRACE_S,
    check_ports_free,
    get_json,
    kill_node,
    running_pid,
    spawn_node,
    stop_nodes,
)
from scribe.config import TRANSPORTS
from scribe.errors import ConfigError

PROG = "python -m launcher"
EXIT_FAILED = 1
EXIT_USAGE = 2
LEADER_WAIT_S_DEFAULT = 30.0
LOG_TAIL_LINES = 15
API_TOKEN_ENV = "SCRIBE_API_TOKEN"


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port in 1..65535")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Run a Scribe Ledger cluster locally.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dir", default="./cluster", help="cluster directory (default ./cluster)")
        return p

    up = with_dir(sub.add_parser("up", help="write configs, start the nodes, wait for a leader"))
    up.add_argument("-n", "--nodes", type=int, default=3, help=f"{NODES_MIN}..{NODES_MAX}")
    up.add_argument("--transport", choices=TRANSPORTS, default="tcp")
    up.add_argument("--http-port", type=_port, default=8001, help="node i: http-port + i - 1")
    up.add_argument("--raft-port", type=_port, default=9001, help="node i: raft-port + i - 1")
    up.add_argument("--detach", action="store_true", help="return once the cluster is up")
    up.add_argument("--tick-ms", type=_positive, default=100)
    up.add_argument("--election-timeout", type=_positive, default=10, help="ticks")
    up.add_argument("--heartbeat-timeout", type=_positive, default=3, help="ticks")
    up.add_argument("--timeout", type=float, default=LEADER_WAIT_S_DEFAULT, help="seconds")
    up.add_argument(
        "--api-token",
        default=os.environ.get(API_TOKEN_ENV) or None,
        help=f"bearer token required for writes (default: ${API_TOKEN_ENV}; none: writes open)",
    )
    up.add_argument(
        "--no-curve",
        dest="curve",
        action="store_false",
        help="plain tcp/ipc peer links (default: CurveZMQ, one key pair per node in DIR/keys)",
    )
    up.add_argument(
        "--enable-fault-injection",
        action="store_true",
        help="test only: nodes obey `faults` commands (partitions, fsync failures)",
    )
    with_dir(sub.add_parser("status", help="print the node table"))
    down = with_dir(sub.add_parser("down", help="stop every node (SIGTERM, then SIGKILL)"))
    down.add_argument("--grace", type=float, default=STOP_GRACE_S, help="seconds before SIGKILL")
    for name, text in (
        ("stop", "stop one node (SIGTERM)"),
        ("start", "start one node again; it catches up"),
        ("kill", "SIGKILL one node (failure tests)"),
    ):
        p = with_dir(sub.add_parser(name, help=text))
        p.add_argument("id", type=int)
        if name == "start":
            p.add_argument("--timeout", type=float, default=LEADER_WAIT_S_DEFAULT)
            p.add_argument(
                "--rejoin",
                action="store_true",
                help="the node lost its data directory: let it start empty and catch up "
                "(it does not vote until it has caught up)",
            )
    faults_cmd = with_dir(
        sub.add_parser(
            "faults",
            help="test only: partitions, drops, fsync",
            description="Switch the test-only faults of a cluster started with "
            "`up --enable-fault-injection`.",
            epilog=faults.__doc__.split("\n\n")[2],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    faults_cmd.add_argument("action", choices=faults.COMMANDS)
    faults_cmd.add_argument("groups", nargs="*", help="node ids, comma-separated groups, or P")
    faults_cmd.add_argument("--seed", type=int, default=0, help="seeds random drops")
    return parser


# ---- the node table ------------------------------------------------------------------------


def node_rows(cdir: ClusterDir) -> list[dict]:
    rows = []
    for node_id in cdir.node_ids():
        config = cdir.load(node_id)
        net = config.network
        pid = running_pid(cdir, node_id)
        status = None
        if pid is not None:
            status = get_json(f"http://{HOST}:{net.client_port}/cluster/status")
        rows.append(
            {
                "id": node_id,
                "pid": pid,
                "role": (status or {}).get("role", "-"),
                "term": (status or {}).get("term", "-"),
                "commit": (status or {}).get("commit_index", "-"),
                "http": f"http://{HOST}:{net.client_port}",
                "raft": f"{net.transport}:{HOST}:{net.raft_port}",
                "alive": "yes" if status is not None else ("starting" if pid else "no"),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    headers = ("id", "pid", "role", "term", "commit", "http", "raft", "alive")
    cells = [[str(h).upper() for h in headers]]
    for row in rows:
        cells.append(["-" if row[h] is None else str(row[h]) for h in headers])
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


# ---- up ------------------------------------------------------------------------------------


def _spec(args: argparse.Namespace) -> ClusterSpec:
    if not NODES_MIN <= args.nodes <= NODES_MAX:
        raise LauncherError(f"-n {args.nodes}: a cluster has {NODES_MIN} to {NODES_MAX} nodes")
    if args.election_timeout <= args.heartbeat_timeout:
        raise LauncherError(
            f"--election-timeout {args.election_timeout} must be above "
            f"--heartbeat-timeout {args.heartbeat_timeout}"
        )
    token = args.api_token
    if token is not None and (not token or token != token.strip()):
        raise LauncherError("--api-token must be non-empty, without surrounding spaces")
    spec = ClusterSpec(
        args.nodes,
        args.transport,
        args.http_port,
        args.raft_port,
        args.tick_ms,
        args.election_timeout,
        args.heartbeat_timeout,
        api_token=args.api_token,
        curve=args.curve,
    )
    http = {spec.http_of(i) for i in range(1, spec.nodes + 1)}
    raft = {spec.raft_of(i) for i in range(1, spec.nodes + 1)}
    if max(http | raft) > 65535:
        raise LauncherError(f"ports run past 65535 with -n {spec.nodes}")
    if http & raft:
        raise LauncherError(
            f"HTTP ports {min(http)}..{max(http)} overlap Raft ports {min(raft)}..{max(raft)}"
        )
    return spec


def _ports_to_check(spec: ClusterSpec) -> list[tuple[int, str]]:
    ports = [(spec.http_of(i), f"HTTP of node {i}") for i in range(1, spec.nodes + 1)]
    if spec.transport == "tcp":
        ports += [(spec.raft_of(i), f"Raft of node {i}") for i in range(1, spec.nodes + 1)]
    return ports


def _refuse_running(cdir: ClusterDir) -> None:
    running = [i for i in cdir.node_ids() if running_pid(cdir, i) is not None]
    if running:
        ids = ", ".join(str(i) for i in running)
        raise LauncherError(
            f"a cluster is already running in {cdir.path} (nodes {ids}); "
            f"stop it with `{PROG} down --dir {cdir.path}`"
        )


def _refuse_other_membership(cdir: ClusterDir, spec: ClusterSpec) -> None:
    existing = cdir.node_ids()
    if existing and existing != list(range(1, spec.nodes + 1)) and (cdir.path / "data").exists():
        raise LauncherError(
            f"{cdir.path} holds the data of a {len(existing)}-node cluster; "
            f"use -n {len(existing)}, another --dir, or remove it"
        )


def _log_tail(cdir: ClusterDir, node_id: int) -> str:
    try:
        lines = cdir.log_path(node_id).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    " + line for line in lines[-LOG_TAIL_LINES:])


def wait_for_leader(
    cdir: ClusterDir,
    node_ids: list[int],
    timeout_s: float,
    children: dict[int, subprocess.Popen] | None = None,
) -> int:
    """Wait until every node answers and agrees on one leader; returns its id.
    Raises LauncherError (exit 1) when a node dies or time runs out."""
    children = children or {}
    ports = {i: cdir.load(i).network.client_port for i in node_ids}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node_id, child in children.items():
            if child.poll() is not None:
                raise LauncherError(
                    f"node {node_id} exited with code {child.returncode}; its log "
                    f"({cdir.log_path(node_id)}) ends with:\n{_log_tail(cdir, node_id)}"
                )
        leaders = set()
        for port in ports.values():
            health = get_json(f"http://{HOST}:{port}/health")
            leaders.add(None if health is None else health.get("leader_id"))
        if len(leaders) == 1 and None not in leaders:
            return leaders.pop()
        time.sleep(POLL_INTERVAL_S)
    raise LauncherError(
        f"no leader elected within {timeout_s:g} s; see the logs in {cdir.path}/logs"
    )


def cmd_up(args: argparse.Namespace) -> int:
    spec = _spec(args)
    cdir = ClusterDir(args.dir)
    _refuse_running(cdir)
    _refuse_other_membership(cdir, spec)
    check_ports_free(_ports_to_check(spec))
    cdir.write_configs(spec)
    faults.set_enabled(cdir, args.enable_fault_injection)
    for node_id in range(1, spec.nodes + 1):  # check them as the nodes will
        try:
            cdir.load(node_id)
        except ConfigError as exc:
            raise LauncherError(f"the written config is invalid: {exc}") from None
    node_ids = list(range(1, spec.nodes + 1))
    children: dict[int, subprocess.Popen] = {}
    stop_requested = []

    def on_signal(signum, _frame) -> None:
        stop_requested.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for node_id in node_ids:
            children[node_id] = spawn_node(cdir, node_id)
        try:
            leader = wait_for_leader(cdir, node_ids, args.timeout, children)
        except LauncherError:
            stop_nodes(cdir, node_ids, children=children)
            raise
        print(f"cluster of {spec.nodes} up in {cdir.path} (leader: node {leader})")
        print(format_table(node_rows(cdir)))
        sys.stdout.flush()
        if args.detach:
            print(f"stop it with: {PROG} down --dir {cdir.path}")
            return 0
        print("Ctrl+C stops the cluster")
        sys.stdout.flush()
        reported: set[int] = set()
        while not stop_requested:
            for node_id, child in children.items():
                if child.poll() is not None and node_id not in reported:
                    reported.add(node_id)
                    print(f"node {node_id} exited with code {child.returncode}", flush=True)
            time.sleep(POLL_INTERVAL_S * 2)
        print("stopping the cluster", flush=True)
        _down(cdir, node_ids, STOP_GRACE_S, children)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---- down / stop / kill / start / status ---------------------------------------------------


def _down(
    cdir: ClusterDir,
    node_ids: list[int],
    grace_s: float,
    children: dict[int, subprocess.Popen] | None = None,
) -> None:
    running = [i for i in node_ids if running_pid(cdir, i) is not None]
    killed = stop_nodes(cdir, node_ids, grace_s=grace_s, children=children)
    if killed:
        print(f"nodes {', '.join(map(str, killed))} did not stop in {grace_s:g} s: SIGKILLed")
    transports.shm_cleanup(str(cdir.path))  # rings left by killed nodes (no-op otherwise)
    print(f"stopped {len(running)} node(s) in {cdir.path}")


def _require_cluster(cdir: ClusterDir) -> list[int]:
    ids = cdir.node_ids()
    if not ids:
        raise LauncherError(f"no cluster in {cdir.path} (no config-node*.toml)")
    return ids


def _require_node(cdir: ClusterDir, node_id: int) -> None:
    ids = _require_cluster(cdir)
    if node_id not in ids:
        raise LauncherError(f"no node {node_id} in {cdir.path} (nodes {ids[0]}..{ids[-1]})")


def cmd_down(args: argparse.Namespace) -> int:
    cdir = ClusterDir(args.dir)
    _down(cdir, _require_cluster(cdir), args.grace)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    cdir = ClusterDir(args.dir)
    _require_node(cdir, args.id)
    if running_pid(cdir, args.id) is None:
        print(f"node {args.id} is not running")
        return 0
    killed = stop_nodes(cdir, [args.id])
    print(f"node {args.id} {'SIGKILLed after the grace period' if killed else 'stopped'}")
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    cdir = ClusterDir(args.dir)
    _require_node(cdir, args.id)
    if kill_node(cdir, args.id):
        print(f"node {args.id} killed (SIGKILL)")
    else:
        print(f"node {args.id} is not running")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    cdir = ClusterDir(args.dir)
    _require_node(cdir, args.id)
    if running_pid(cdir, args.id) is not None:
        raise LauncherError(f"node {args.id} is already running")
    config = cdir.load(args.id)
    ports = [(config.network.client_port, f"HTTP of node {args.id}")]
    if config.network.transport == "tcp":
        ports.append((config.network.raft_port, f"Raft of node {args.id}"))
    check_ports_free(ports)
    child = spawn_node(cdir, args.id, rejoin=args.rejoin)
    # Wait until it answers and knows the leader; with no quorum up there may be none yet.
    try:
        wait_for_leader(cdir, [args.id], args.timeout, {args.id: child})
    except LauncherError as exc:
        if child.poll() is not None:
            cdir.remove_pid(args.id)
            raise
        print(f"node {args.id} started (pid {child.pid}) but {exc}")
        return EXIT_FAILED
    print(f"node {args.id} started (pid {child.pid})")
    print(format_table(node_rows(cdir)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cdir = ClusterDir(args.dir)
    _require_cluster(cdir)
    print(format_table(node_rows(cdir)))
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    for line in faults.apply(ClusterDir(args.dir), args.action, args.groups, seed=args.seed):
        print(line)
    return 0


COMMANDS = {
    "up": cmd_up,
    "status": cmd_status,
    "down": cmd_down,
    "stop": cmd_stop,
    "start": cmd_start,
    "kill": cmd_kill,
    "faults": cmd_faults,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LauncherError as exc:
        text = str(exc)
        code = EXIT_FAILED if "exited with code" in text or "no leader" in text else EXIT_USAGE
        print(f"{PROG} {args.command}: {text}", file=sys.stderr)
        return code
    except ConfigError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
