"""A cluster directory: its config files, pid files and logs, and the configs the launcher writes.

DIR/config-node{i}.toml     the same format a user writes by hand (scribe.config loads it)
DIR/data/node{i}/           the node's data_dir (relative paths resolve against DIR)
DIR/pids/node{i}.pid        written by the launcher when it starts node i
DIR/logs/node{i}.log        the node's stdout and stderr
DIR/keys/secret/node{i}.key_secret   node i's CurveZMQ secret key (dir 0700, file 0600)
DIR/keys/public/node{i}.key          every node's public key (peers accept only these)

Config files are written mode 0600: they may carry the API token.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from scribe.config import NodeConfig, load_config
from transports import curve

NODES_MIN = 1
NODES_MAX = 7
HOST = "127.0.0.1"
CONFIG_FILE_MODE = 0o600
CURVE_TRANSPORTS = ("tcp", "ipc")  # shm links stay on the host, in 0600 shared memory
_CONFIG_NAME = re.compile(r"^config-node(\d+)\.toml$")


class LauncherError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


@dataclass(frozen=True)
class ClusterSpec:
    nodes: int
    transport: str
    http_port: int  # node i serves HTTP on http_port + i - 1
    raft_port: int  # and Raft on raft_port + i - 1
    tick_ms: int
    election_timeout_ticks: int
    heartbeat_timeout_ticks: int
    api_token: str | None = field(default=None, repr=False)  # never printed
    curve: bool = True  # CurveZMQ keys for tcp and ipc peer links

    @property
    def uses_curve(self) -> bool:
        return self.curve and self.transport in CURVE_TRANSPORTS

    def http_of(self, node_id: int) -> int:
        return self.http_port + node_id - 1

    def raft_of(self, node_id: int) -> int:
        return self.raft_port + node_id - 1


class ClusterDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    def config_path(self, node_id: int) -> Path:
        return self.path / f"config-node{node_id}.toml"

    def pid_path(self, node_id: int) -> Path:
        return self.path / "pids" / f"node{node_id}.pid"

    def log_path(self, node_id: int) -> Path:
        return self.path / "logs" / f"node{node_id}.log"

    @property
    def secret_keys_dir(self) -> Path:
        return self.path / "keys" / "secret"

    @property
    def public_keys_dir(self) -> Path:
        return self.path / "keys" / "public"

    def node_ids(self) -> list[int]:
        """Ids of the nodes that have a config file here, ascending."""
        if not self.path.is_dir():
            return []
        ids = []
        for entry in self.path.iterdir():
            match = _CONFIG_NAME.match(entry.name)
            if match:
                ids.append(int(match.group(1)))
        return sorted(ids)

    def load(self, node_id: int) -> NodeConfig:
        path = self.config_path(node_id)
        if not path.is_file():
            raise LauncherError(f"no node {node_id} in {self.path} (missing {path.name})")
        return load_config(path, create_data_dir=False)

    def read_pid(self, node_id: int) -> int | None:
        try:
            text = self.pid_path(node_id).read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def write_pid(self, node_id: int, pid: int) -> None:
        path = self.pid_path(node_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(path)

    def remove_pid(self, node_id: int) -> None:
        self.pid_path(node_id).unlink(missing_ok=True)

    def write_configs(self, spec: ClusterSpec) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "pids").mkdir(exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        if spec.uses_curve:  # kept across `up`s: a node's key is its identity
            for node_id in range(1, spec.nodes + 1):
                curve.generate_keys(self.secret_keys_dir, self.public_keys_dir, node_id)
        for node_id in range(1, spec.nodes + 1):
            path = self.config_path(node_id)
            tmp = path.with_suffix(".tmp")
            # created 0600 from the start: the token is never readable by others, even briefly
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, CONFIG_FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(render_config(spec, node_id))
            os.chmod(tmp, CONFIG_FILE_MODE)  # O_CREAT's mode does not apply to an old file
            tmp.replace(path)


def render_config(spec: ClusterSpec, node_id: int) -> str:
    members = "\n".join(
        f'    {{ id = {i}, host = "{HOST}", client_port = {spec.http_of(i)}, '
        f"raft_port = {spec.raft_of(i)} }},"
        for i in range(1, spec.nodes + 1)
    )
    return f"""# Node {node_id} of a {spec.nodes}-node cluster written by `python -m launcher up`.
# Run by hand: python -m scribe.node --config config-node{node_id}.toml --node-id {node_id}
# Relative paths are resolved against this file's directory.

[node]
id = {node_id}
address = "{HOST}:{spec.http_of(node_id)}"
data_dir = "./data/node{node_id}"

[network]
listen_addr = "{HOST}"
client_port = {spec.http_of(node_id)}
raft_port = {spec.raft_of(node_id)}
transport = "{spec.transport}"

[cluster]
nodes = [
{members}
]

[consensus]
tick_ms = {spec.tick_ms}
election_timeout = {spec.election_timeout_ticks}   # ticks
heartbeat_timeout = {spec.heartbeat_timeout_ticks}  # ticks
{_security_section(spec, node_id)}"""


def _security_section(spec: ClusterSpec, node_id: int) -> str:
    lines = []
    if spec.api_token is not None:
        # json.dumps gives a valid TOML basic string (same escapes) for any token text
        lines.append(f"api_token = {json.dumps(spec.api_token)}  # bearer token for writes")
    if spec.uses_curve:
        lines.append(f'curve_secret_key_file = "./keys/secret/node{node_id}.key_secret"')
        lines.append('curve_public_keys_dir = "./keys/public"')
    if not lines:
        return ""
    return "\n[security]\n" + "\n".join(lines) + "\n"
