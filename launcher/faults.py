"""`python -m launcher faults --dir D ...`: switch the test-only faults of a running cluster.

Works on a cluster started with `up --enable-fault-injection` (its nodes poll a control file in
their data_dir: see scribe.node.faults). Each command rewrites every node's control file:

    isolate 2                 node 2 loses every Raft link (its HTTP API stays up)
    partition 1,2 3           nodes talk only within their group (unlisted nodes: one more group)
    bridge 1 3 2              the groups 1 and 2 cannot talk; 3 talks to both
    drop 0.2 [--seed 7]       every Raft frame is lost with probability 0.2 (links kept)
    fsync-fail 2              node 2's next log sync fails: it stops without acknowledging
    heal                      no faults at all
    show                      print every node's control

A node started again by the launcher comes back with a working disk (its fsync fault is cleared).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from launcher.layout import ClusterDir, LauncherError
from scribe.node.faults import control_path

MARKER_FILE = "fault-injection.enabled"
NODE_FLAG = "--enable-fault-injection"
COMMANDS = ("isolate", "partition", "bridge", "drop", "fsync-fail", "heal", "show")


def marker(cdir: ClusterDir) -> Path:
    return cdir.path / MARKER_FILE


def enabled(cdir: ClusterDir) -> bool:
    return marker(cdir).exists()


def set_enabled(cdir: ClusterDir, on: bool) -> None:
    """Remember whether this cluster's nodes run with fault injection; start with no faults."""
    for node_id in cdir.node_ids():
        control_file(cdir, node_id).unlink(missing_ok=True)
    if on:
        marker(cdir).write_text("nodes of this cluster start with --enable-fault-injection\n")
    else:
        marker(cdir).unlink(missing_ok=True)


def node_args(cdir: ClusterDir, node_id: int) -> list[str]:
    """Extra arguments for a node the launcher starts; clears a pending fsync fault (a node that
    is started again has a working disk)."""
    if not enabled(cdir):
        return []
    doc = read_control(cdir, node_id)
    if doc.get("fsync_fail"):
        doc["fsync_fail"] = False
        write_control(cdir, node_id, doc)
    return [NODE_FLAG]


def control_file(cdir: ClusterDir, node_id: int) -> Path:
    data_dir = cdir.load(node_id).node.data_dir
    return control_path(data_dir)


def read_control(cdir: ClusterDir, node_id: int) -> dict[str, Any]:
    try:
        doc = json.loads(control_file(cdir, node_id).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise LauncherError(f"{control_file(cdir, node_id)} is not JSON: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def write_control(cdir: ClusterDir, node_id: int, doc: dict[str, Any]) -> None:
    path = control_file(cdir, node_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a polling node never reads half a file


def parse_group(text: str, ids: Sequence[int]) -> set[int]:
    try:
        group = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise LauncherError(f"{text!r} is not a comma-separated list of node ids") from None
    unknown = group - set(ids)
    if not group or unknown:
        raise LauncherError(
            f"group {text!r}: no node {sorted(unknown)} in this cluster (nodes {list(ids)})"
        )
    return group


def cut_links(ids: Sequence[int], groups: Iterable[set[int]]) -> dict[int, set[int]]:
    """Isolation sets for a partition into groups: each node hears only its own group."""
    groups = [set(g) for g in groups]
    listed = set().union(*groups) if groups else set()
    rest = set(ids) - listed
    if rest:
        groups.append(rest)
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            if a & b:
                raise LauncherError(f"node(s) {sorted(a & b)} are in two groups")
    out = {}
    for group in groups:
        for node_id in group:
            out[node_id] = set(ids) - group
    return out


def isolation_for(command: str, args: Sequence[str], ids: Sequence[int]) -> dict[int, set[int]]:
    if command == "isolate":
        if not args:
            raise LauncherError("isolate needs node ids")
        isolated = set().union(*(parse_group(a, ids) for a in args))
        return cut_links(ids, [{i} for i in sorted(isolated)])
    if command == "partition":
        if len(args) < 1:
            raise LauncherError("partition needs groups, e.g. `partition 1,2 3`")
        return cut_links(ids, [parse_group(a, ids) for a in args])
    if command == "bridge":
        if len(args) != 3:
            raise LauncherError("bridge needs three groups: LEFT BRIDGE RIGHT, e.g. `bridge 1 3 2`")
        left, middle, right = (parse_group(a, ids) for a in args)
        if (left & middle) or (left & right) or (middle & right):
            raise LauncherError("bridge: the three groups must not overlap")
        out = {i: set() for i in ids}
        for a in left:
            out[a] |= right
        for b in right:
            out[b] |= left
        return out
    raise LauncherError(f"unknown fault command {command!r}")


def apply(cdir: ClusterDir, command: str, args: Sequence[str], seed: int = 0) -> list[str]:
    """Rewrite the control files for one fault command; returns lines describing the result."""
    ids = cdir.node_ids()
    if not ids:
        raise LauncherError(f"no cluster in {cdir.path} (no config-node*.toml)")
    if not enabled(cdir):
        raise LauncherError(
            f"the cluster in {cdir.path} was not started with `up --enable-fault-injection`"
        )
    docs = {i: read_control(cdir, i) for i in ids}
    if command == "heal":
        docs = {i: {} for i in ids}
    elif command == "drop":
        if len(args) != 1:
            raise LauncherError("drop needs one probability, e.g. `drop 0.2`")
        try:
            probability = float(args[0])
        except ValueError:
            raise LauncherError(f"{args[0]!r} is not a probability") from None
        if not 0.0 <= probability <= 1.0:
            raise LauncherError(f"drop probability {probability} is not within [0, 1]")
        for i in ids:
            docs[i].update(drop_probability=probability, seed=seed + i)
    elif command == "fsync-fail":
        for node_id in set().union(*(parse_group(a, ids) for a in args)) if args else ():
            docs[node_id]["fsync_fail"] = True
        if not args:
            raise LauncherError("fsync-fail needs node ids")
    elif command != "show":
        for node_id, isolated in isolation_for(command, args, ids).items():
            docs[node_id]["isolate"] = sorted(isolated)
    if command != "show":
        for node_id, doc in docs.items():
            write_control(cdir, node_id, doc)
    return [f"node {i}: {json.dumps(docs[i], sort_keys=True)}" for i in ids]
