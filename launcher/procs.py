"""Node processes: spawn, find by pid file, signal, wait; free-port checks; HTTP probes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from launcher import faults
from launcher.layout import HOST, ClusterDir, LauncherError

# Seconds a node gets to stop after SIGTERM (it hands leadership over first) before SIGKILL.
STOP_GRACE_S = 10.0
# Seconds to wait for a SIGKILLed process to vanish.
KILL_WAIT_S = 5.0
PROBE_TIMEOUT_S = 1.0
POLL_INTERVAL_S = 0.1
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def is_node_process(pid: int, config_path: Path) -> bool:
    """True when pid is alive and runs scribe.node with this config (pid files can be stale)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    args = raw.split(b"\0")
    return b"scribe.node" in args and os.fsencode(str(config_path)) in args


def _exited(pid: int) -> bool:
    """True when pid is gone or a zombie: by then the kernel has closed its files and sockets
    (its cmdline empties earlier, while it still holds its ports)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat.rpartition(")")[2].split()[0]
    return state in ("Z", "X")


def running_pid(cdir: ClusterDir, node_id: int) -> int | None:
    pid = cdir.read_pid(node_id)
    if pid is None or not is_node_process(pid, cdir.config_path(node_id)):
        return None
    return pid


def spawn_node(cdir: ClusterDir, node_id: int, *, rejoin: bool = False) -> subprocess.Popen:
    """Start node_id in its own session (Ctrl+C of the launcher is the launcher's to handle).

    rejoin: the node lost its data directory and may start empty (scribe.node --rejoin)."""
    log_path = cdir.log_path(node_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PROJECT_ROOT, env.get("PYTHONPATH", "")) if p)
    command = [
        sys.executable,
        "-m",
        "scribe.node",
        "--config",
        str(cdir.config_path(node_id)),
        "--node-id",
        str(node_id),
        *faults.node_args(cdir, node_id),  # test-only fault injection, when `up` enabled it
    ]
    if rejoin:
        command.append("--rejoin")
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    cdir.write_pid(node_id, proc.pid)
    return proc


def _gone(pid: int, child: subprocess.Popen | None) -> bool:
    if child is not None:
        return child.poll() is not None
    return _exited(pid)


def wait_gone(pid: int, timeout_s: float, child: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _gone(pid, child):
            return True
        time.sleep(POLL_INTERVAL_S / 2)
    return _gone(pid, child)


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop_nodes(
    cdir: ClusterDir,
    node_ids: list[int],
    *,
    grace_s: float = STOP_GRACE_S,
    children: dict[int, subprocess.Popen] | None = None,
) -> list[int]:
    """SIGTERM every running node of node_ids at once, SIGKILL those still up after grace_s.
    Removes their pid files. Returns the ids that had to be killed."""
    children = children or {}
    targets = {}
    for node_id in node_ids:
        pid = running_pid(cdir, node_id)
        if pid is not None:
            targets[node_id] = pid
            signal_pid(pid, signal.SIGTERM)
        else:
            cdir.remove_pid(node_id)
    killed = []
    deadline = time.monotonic() + grace_s
    for node_id, pid in targets.items():
        child = children.get(node_id)
        if not wait_gone(pid, max(0.0, deadline - time.monotonic()), child):
            signal_pid(pid, signal.SIGKILL)
            wait_gone(pid, KILL_WAIT_S, child)
            killed.append(node_id)
        cdir.remove_pid(node_id)
    return killed


def kill_node(cdir: ClusterDir, node_id: int) -> bool:
    """SIGKILL node_id (a crash, for failure tests). False when it was not running."""
    pid = running_pid(cdir, node_id)
    if pid is None:
        cdir.remove_pid(node_id)
        return False
    signal_pid(pid, signal.SIGKILL)
    wait_gone(pid, KILL_WAIT_S)
    cdir.remove_pid(node_id)
    return True


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers do: a port with only TIME_WAIT connections left is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def check_ports_free(ports: list[tuple[int, str]]) -> None:
    for port, what in ports:
        if port_in_use(port):
            raise LauncherError(f"port {port} ({what}) is already in use on {HOST}")


def get_json(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Any | None:
    """GET url and parse its JSON; None when the node does not answer (down, starting)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
