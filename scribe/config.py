"""The node's TOML configuration (DESIGN §6): parsed, checked and frozen.

`load_config(path, node_id=None)` returns a `NodeConfig` or raises `ConfigError` with one message
that names the file and the offending key. Every key of every section is declared once in the
schemas below; anything else in the file is an error, so a typo never silently falls back to a
default. Relative paths (data_dir, curve key files) are resolved against the config file's
directory, so a config works the same whatever directory the node is started from.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scribe.errors import ConfigError
from scribe.limits import (
    CACHE_BYTES_DEFAULT,
    FLUSH_EVERY_MS_DEFAULT,
    SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MIN,
    VALUE_BYTES_MAX_DEFAULT,
)

PORT_MIN = 1
PORT_MAX = 65535
TRANSPORTS = ("tcp", "ipc", "shm")

LISTEN_ADDR_DEFAULT = "127.0.0.1"
CLIENT_PORT_DEFAULT = 8080  # the seed's default HTTP port
RAFT_PORT_DEFAULT = 8081  # the seed's default Raft port
DATA_DIR_DEFAULT = "./data"
TICK_MS_DEFAULT = 100
ELECTION_TIMEOUT_TICKS_DEFAULT = 10
HEARTBEAT_TIMEOUT_TICKS_DEFAULT = 3
MAX_LOG_ENTRIES_DEFAULT = 1000


@dataclass(frozen=True)
class NodeSection:
    id: int
    data_dir: Path  # absolute
    address: str | None  # "host:port" the node advertises (the seed's key); informative


@dataclass(frozen=True)
class NetworkSection:
    listen_addr: str
    client_port: int  # HTTP API
    raft_port: int  # peer links
    transport: str  # one of TRANSPORTS


@dataclass(frozen=True)
class ClusterNode:
    id: int
    host: str
    client_port: int
    raft_port: int

    @property
    def client_url(self) -> str:
        return f"http://{self.host}:{self.client_port}"


@dataclass(frozen=True)
class ClusterSection:
    nodes: tuple[ClusterNode, ...]  # sorted by id; a config without [cluster] is a cluster of one


@dataclass(frozen=True)
class StorageSection:
    segment_size: int  # bytes
    max_cache_size: int  # bytes
    flush_every_ms: int
    max_value_bytes: int
    s3_bucket: str | None
    s3_region: str | None
    s3_endpoint: str | None

    def ledger_options(self) -> dict[str, int]:
        """The keyword arguments of scribe.Ledger(path, ...) (DESIGN §3) this section sets."""
        return {
            "segment_size": self.segment_size,
            "max_cache_size": self.max_cache_size,
            "flush_every_ms": self.flush_every_ms,
            "max_value_bytes": self.max_value_bytes,
        }


@dataclass(frozen=True)
class ConsensusSection:
    tick_ms: int
    election_timeout: int  # ticks
    heartbeat_timeout: int  # ticks
    max_log_entries: int


@dataclass(frozen=True)
class SecuritySection:
    api_token: str | None = field(repr=False)  # bearer token for writes; never printed
    curve_secret_key_file: Path | None  # this node's zmq.auth secret key file (mode 0600)
    curve_public_keys_dir: Path | None  # holds node{i}.key, the public key of every member i

    @property
    def curve_enabled(self) -> bool:
        return self.curve_secret_key_file is not None


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    node: NodeSection
    network: NetworkSection
    cluster: ClusterSection
    storage: StorageSection
    consensus: ConsensusSection
    security: SecuritySection

    @property
    def node_id(self) -> int:
        return self.node.id

    @property
    def self_member(self) -> ClusterNode:
        for member in self.cluster.nodes:
            if member.id == self.node.id:
                return member
        raise ConfigError(f"{self.path}: node {self.node.id} is not in [cluster] nodes")

    @property
    def peers(self) -> tuple[ClusterNode, ...]:
        return tuple(m for m in self.cluster.nodes if m.id != self.node.id)


# --- the schema: every accepted key, its type and default -------------------------------------


_MISSING = object()


@dataclass(frozen=True)
class _Key:
    kind: str  # "int", "port", "str", "path", "choice", "address"
    default: Any = _MISSING
    minimum: int = 1


_NODE = {
    "id": _Key("int", 1),
    "data_dir": _Key("path", DATA_DIR_DEFAULT),
    "address": _Key("address", None),
}
_NETWORK = {
    "listen_addr": _Key("str", LISTEN_ADDR_DEFAULT),
    "client_port": _Key("port", None),
    "raft_port": _Key("port", None),
    "raft_tcp_port": _Key("port", None),  # the seed's name of raft_port
    "transport": _Key("choice", "tcp"),
}
_CLUSTER = {"nodes": _Key("nodes")}
_CLUSTER_NODE = {
    "id": _Key("int"),
    "host": _Key("str", LISTEN_ADDR_DEFAULT),
    "client_port": _Key("port"),
    "raft_port": _Key("port", None),
    "raft_tcp_port": _Key("port", None),
}
_STORAGE = {
    "segment_size": _Key("int", SEGMENT_BYTES_DEFAULT, minimum=SEGMENT_BYTES_MIN),
    "max_cache_size": _Key("int", CACHE_BYTES_DEFAULT, minimum=0),
    "flush_every_ms": _Key("int", FLUSH_EVERY_MS_DEFAULT, minimum=0),  # 0: fsync every write
    "max_value_bytes": _Key("int", VALUE_BYTES_MAX_DEFAULT, minimum=0),
    "s3_bucket": _Key("str", None),
    "s3_region": _Key("str", None),
    "s3_endpoint": _Key("str", None),
}
_CONSENSUS = {
    "tick_ms": _Key("int", TICK_MS_DEFAULT),
    "election_timeout": _Key("int", ELECTION_TIMEOUT_TICKS_DEFAULT),
    "heartbeat_timeout": _Key("int", HEARTBEAT_TIMEOUT_TICKS_DEFAULT),
    "max_log_entries": _Key("int", MAX_LOG_ENTRIES_DEFAULT),
}
_SECURITY = {
    "api_token": _Key("str", None),
    "curve_secret_key_file": _Key("path", None),
    "curve_public_keys_dir": _Key("path", None),
}
_SECTIONS: dict[str, dict[str, _Key]] = {
    "node": _NODE,
    "network": _NETWORK,
    "cluster": _CLUSTER,
    "storage": _STORAGE,
    "consensus": _CONSENSUS,
    "security": _SECURITY,
}


class _Checker:
    """Turns raw TOML values into typed ones; every failure names the file and the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def unknown(self, where: str, name: str, known: Iterator[str] | list[str]) -> ConfigError:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return ConfigError(f"{self.path}: {where}: unknown key {name!r}{hint}")

    def table(self, where: str, raw: Mapping[str, Any], schema: dict[str, _Key]) -> dict[str, Any]:
        for name in raw:
            if name not in schema:
                raise self.unknown(where, name, list(schema))
        out = {}
        for name, spec in schema.items():
            if name in raw:
                out[name] = self.value(f"{where} {name}", raw[name], spec)
            elif spec.default is _MISSING:
                raise self.fail(f"{where} {name}", "is required")
            elif spec.kind == "path" and spec.default is not None:
                out[name] = self.value(f"{where} {name}", spec.default, spec)
            else:
                out[name] = spec.default
        return out

    def value(self, where: str, raw: Any, spec: _Key) -> Any:
        if spec.kind in ("int", "port"):
            # bool is an int subclass in Python: `port = true` must not pass as 1
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise self.fail(where, f"expected an integer, got {_describe(raw)}")
            if spec.kind == "port" and not PORT_MIN <= raw <= PORT_MAX:
                raise self.fail(where, f"= {raw} is out of range {PORT_MIN}..{PORT_MAX}")
            if raw < spec.minimum:
                raise self.fail(where, f"= {raw} must be at least {spec.minimum}")
            return raw
        if spec.kind == "nodes":
            return raw  # checked by _cluster(), which knows the per-node schema
        if not isinstance(raw, str):
            raise self.fail(where, f"expected a string, got {_describe(raw)}")
        if spec.kind == "choice":
            if raw not in TRANSPORTS:
                raise self.fail(where, f"= {raw!r} is not one of {', '.join(TRANSPORTS)}")
        elif spec.kind == "address":
            host, sep, port = raw.rpartition(":")
            if not sep or not host or not port.isdigit() or not PORT_MIN <= int(port) <= PORT_MAX:
                raise self.fail(where, f"= {raw!r} is not host:port with a port in 1..65535")
        elif spec.kind == "path":
            if not raw:
                raise self.fail(where, "is an empty path")
            return (self.path.parent / os.path.expanduser(raw)).resolve()
        elif not raw and spec.default is not None:
            raise self.fail(where, "is empty")
        return raw


def _describe(raw: Any) -> str:
    kinds = {
        bool: "a boolean",
        str: "a string",
        float: "a float",
        list: "an array",
        dict: "a table",
    }
    kind = kinds.get(type(raw), type(raw).__name__)
    return f"{kind} ({raw!r})" if not isinstance(raw, list | dict) else kind


def _raft_port(check: _Checker, where: str, table: dict[str, Any]) -> int | None:
    """raft_tcp_port is the seed's name of raft_port; both may appear only if they agree."""
    port, alias = table.pop("raft_port"), table.pop("raft_tcp_port")
    if port is not None and alias is not None and port != alias:
        raise check.fail(f"{where} raft_tcp_port", f"= {alias} disagrees with raft_port = {port}")
    return port if port is not None else alias


def _cluster(check: _Checker, raw: Any) -> tuple[ClusterNode, ...]:
    if not isinstance(raw, list) or not raw:
        raise check.fail("[cluster] nodes", "expected a non-empty array of tables")
    members = []
    for i, entry in enumerate(raw):
        where = f"[cluster] nodes[{i}]"
        if not isinstance(entry, dict):
            raise check.fail(where, f"expected a table, got {_describe(entry)}")
        table = check.table(where, entry, _CLUSTER_NODE)
        raft_port = _raft_port(check, where, table)
        if raft_port is None:
            raise check.fail(f"{where} raft_port", "is required")
        members.append(ClusterNode(table["id"], table["host"], table["client_port"], raft_port))
    seen_ids: set[int] = set()
    seen_ports: dict[tuple[str, int], str] = {}
    for i, m in enumerate(members):
        where = f"[cluster] nodes[{i}]"
        if m.id in seen_ids:
            raise check.fail(f"{where} id", f"= {m.id} is a duplicate node id")
        seen_ids.add(m.id)
        for name, port in (("client_port", m.client_port), ("raft_port", m.raft_port)):
            owner = seen_ports.get((m.host, port))
            if owner is not None:
                raise check.fail(f"{where} {name}", f"= {port} on {m.host} is also {owner}")
            seen_ports[(m.host, port)] = f"{where} {name}"
    return tuple(sorted(members, key=lambda m: m.id))


def parse_config(text: str, path: str | os.PathLike[str], node_id: int | None = None) -> NodeConfig:
    """Parse and check config text; `path` names the file in messages and anchors relative paths."""
    path = Path(path)
    check = _Checker(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line L, column C)"
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for name, value in doc.items():
        if name not in _SECTIONS:
            if isinstance(value, dict):
                close = difflib.get_close_matches(name, list(_SECTIONS), n=1)
                hint = f' (did you mean "[{close[0]}]"?)' if close else ""
                raise ConfigError(f"{path}: unknown section [{name}]{hint}")
            raise ConfigError(f"{path}: unknown top-level key {name!r} (keys belong in a section)")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{name}] must be a section, got {_describe(value)}")

    def section(name: str) -> dict[str, Any]:
        return check.table(f"[{name}]", doc.get(name, {}), _SECTIONS[name])

    node_t, net_t, storage_t = section("node"), section("network"), section("storage")
    consensus_t, security_t = section("consensus"), section("security")
    if node_id is not None:
        if isinstance(node_id, bool) or not isinstance(node_id, int) or node_id < 1:
            raise ConfigError(f"{path}: --node-id {node_id!r} must be a positive integer")
        node_t["id"] = node_id
    id_source = "--node-id" if node_id is not None else "[node] id"

    net_raft_port = _raft_port(check, "[network]", net_t)
    if "cluster" in doc:
        nodes = _cluster(check, section("cluster")["nodes"])
        own = next((m for m in nodes if m.id == node_t["id"]), None)
        if own is None:
            ids = ", ".join(str(m.id) for m in nodes)
            raise ConfigError(
                f"{path}: {id_source} = {node_t['id']} is not in [cluster] nodes (ids {ids})"
            )
        # [network] ports default to this node's cluster entry, and must agree with it if given
        for name, given, listed in (
            ("client_port", net_t["client_port"], own.client_port),
            ("raft_port", net_raft_port, own.raft_port),
        ):
            if given is not None and given != listed:
                raise check.fail(
                    f"[network] {name}",
                    f"= {given} disagrees with [cluster] nodes entry of node {own.id} ({listed})",
                )
        client_port, raft_port = own.client_port, own.raft_port
    else:
        client_port = net_t["client_port"] or CLIENT_PORT_DEFAULT
        raft_port = net_raft_port or RAFT_PORT_DEFAULT
        if client_port == raft_port:
            raise check.fail("[network] raft_port", f"= {raft_port} is also client_port")
        host = (
            net_t["listen_addr"] if net_t["listen_addr"] not in ("0.0.0.0", "::") else "127.0.0.1"
        )
        nodes = (ClusterNode(node_t["id"], host, client_port, raft_port),)

    token = security_t["api_token"]
    if token is not None and (not token or token != token.strip()):
        # a bearer token is compared after the header's spaces are stripped: it cannot have any
        raise check.fail("[security] api_token", "must be non-empty, without surrounding spaces")
    curve_files = (security_t["curve_secret_key_file"], security_t["curve_public_keys_dir"])
    if (curve_files[0] is None) != (curve_files[1] is None):
        given, missing = (
            ("curve_secret_key_file", "curve_public_keys_dir")
            if curve_files[0] is not None
            else ("curve_public_keys_dir", "curve_secret_key_file")
        )
        raise check.fail(f"[security] {given}", f"is set but {missing} is not: give both or none")
    if consensus_t["election_timeout"] <= consensus_t["heartbeat_timeout"]:
        raise check.fail(
            "[consensus] election_timeout",
            f"{consensus_t['election_timeout']} ticks must be above heartbeat_timeout"
            f" = {consensus_t['heartbeat_timeout']} ticks",
        )
    return NodeConfig(
        path=path,
        node=NodeSection(**node_t),
        network=NetworkSection(
            listen_addr=net_t["listen_addr"],
            client_port=client_port,
            raft_port=raft_port,
            transport=net_t["transport"],
        ),
        cluster=ClusterSection(nodes),
        storage=StorageSection(**storage_t),
        consensus=ConsensusSection(**consensus_t),
        security=SecuritySection(**security_t),
    )


def prepare_data_dir(config: NodeConfig) -> Path:
    """Create the node's data_dir if needed and check it is a readable, writable directory."""
    data_dir = config.node.data_dir
    where = f"{config.path}: [node] data_dir {str(data_dir)!r}"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{where}: exists and is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be created: {exc.strerror or exc}") from None
    if not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: is not readable and writable by this user")
    return data_dir


def load_config(
    path: str | os.PathLike[str], node_id: int | None = None, *, create_data_dir: bool = True
) -> NodeConfig:
    """Read, parse and check a node's TOML config; `node_id` (from --node-id) overrides [node] id.

    With create_data_dir (the default) the data directory is created and checked too, so a node
    fails at start, with a message naming the key, rather than at its first write.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    config = parse_config(text, path, node_id)
    if create_data_dir:
        prepare_data_dir(config)
    return config


CONFIG_ERROR_EXIT_CODE = 2


@contextlib.contextmanager
def exit_on_config_error(prog: str = "scribe-node") -> Iterator[None]:
    """For CLIs: a ConfigError inside the block prints its one-line message and exits with 2.

    with exit_on_config_error():
        config = load_config(args.config, args.node_id)
    """
    try:
        yield
    except ConfigError as exc:
        print(f"{prog}: config error: {exc}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_EXIT_CODE) from None


def load_config_or_exit(
    path: str | os.PathLike[str], node_id: int | None = None, prog: str = "scribe-node"
) -> NodeConfig:
    """load_config for a CLI's main(): on a bad config, print the message and exit with code 2."""
    with exit_on_config_error(prog):
        return load_config(path, node_id)
