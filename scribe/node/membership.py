"""A node's record of its cluster membership, so a lost data directory is never a silent reset.

Raft's safety rests on every voter remembering what it acknowledged and whom it voted for. A
node whose data directory was deleted (or replaced by an empty one) and that starts again as a
fresh voter can hand a candidate that lacks committed entries the vote it needs: committed
writes are lost. So once a node has run, it leaves two markers:

    <data_dir>/node.id          which node this data belongs to (refused under another id)
    <data_dir>.member           beside the data directory: survives `rm -rf <data_dir>`

On start, an empty data directory while `<data_dir>.member` exists and the cluster has other
members is refused, unless the operator says `--rejoin` (launcher: `start ID --rejoin`): the
node then starts empty and catches up from the leader. A first start (no marker) needs no flag.

A rejoining node forgot whom it voted for, so it neither votes nor campaigns until it holds every
entry committed when it first heard from a leader (RaftCore `rejoining`). That state survives a
restart in `<data_dir>/rejoin.pending`, written before the node starts and removed once it caught
up.
"""

from __future__ import annotations

import os
from pathlib import Path

from engines.fileio import fsync_dir
from scribe.config import NodeConfig
from scribe.errors import ScribeError

NODE_ID_FILE = "node.id"
REJOIN_FILE = "rejoin.pending"
MEMBER_SUFFIX = ".member"
_MARKER_FORMAT = "scribe-node {node_id}\n"


class MembershipError(ScribeError):
    """The data directory does not match the node's recorded membership: refuse to start."""


def member_marker(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + MEMBER_SUFFIX)


def _read_node_id(path: Path) -> int | None:
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    prefix, _, number = text.partition(" ")
    if prefix != "scribe-node" or not number.isdigit():
        return None
    return int(number)


def check(config: NodeConfig, *, rejoin: bool) -> None:
    """Refuse a data directory that belongs to another node, or that was lost (unless rejoin)."""
    data_dir = config.node.data_dir
    own_marker = data_dir / NODE_ID_FILE
    if own_marker.is_file():
        recorded = _read_node_id(own_marker)
        if recorded != config.node_id:
            raise MembershipError(
                f"{own_marker} says this data belongs to node {recorded}, not node "
                f"{config.node_id}: check [node] data_dir and --node-id in {config.path}"
            )
        return
    has_data = data_dir.is_dir() and any(data_dir.iterdir())
    if has_data or len(config.cluster.nodes) == 1:
        return  # data from before these markers, or a cluster of one
    marker = member_marker(data_dir)
    if rejoin:
        if marker.is_file():
            data_dir.mkdir(parents=True, exist_ok=True)
            _write_marker(data_dir / REJOIN_FILE, config.node_id)
        return
    if marker.is_file():
        raise MembershipError(
            f"data_dir {str(data_dir)!r} is empty, but node {config.node_id} has been a member of "
            f"this cluster ({marker} exists): its log was lost. Starting it as a fresh voter "
            "could lose committed writes. To rejoin empty and catch up from the leader, start it "
            f"with --rejoin (launcher: start {config.node_id} --rejoin)"
        )


def _write_marker(path: Path, node_id: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_MARKER_FORMAT.format(node_id=node_id))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(str(path.parent))


def rejoin_pending(config: NodeConfig) -> bool:
    """True while this node is catching up after a rejoin with an empty log."""
    return (config.node.data_dir / REJOIN_FILE).is_file()


def rejoin_done(config: NodeConfig) -> None:
    """The node caught up (and its vote for the current leader is durable): a voter again."""
    path = config.node.data_dir / REJOIN_FILE
    path.unlink(missing_ok=True)
    fsync_dir(str(path.parent))


def record(config: NodeConfig) -> None:
    """Write the markers (once the node is up): from now on a lost data_dir is noticed."""
    data_dir = config.node.data_dir
    for path in (data_dir / NODE_ID_FILE, member_marker(data_dir)):
        if not path.is_file():
            _write_marker(path, config.node_id)
