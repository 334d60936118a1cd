"""`python -m scribe.node --config config-node1.toml [--node-id 1]` (console script scribe-node).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 on a bad config or bad arguments, 1 when the
node cannot start (port in use, data directory locked) or fails while running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvloop

from scribe.config import load_config_or_exit
from scribe.errors import CorruptionError, ScribeError
from scribe.node import membership
from scribe.node.limits import GIL_SWITCH_INTERVAL_S
from scribe.node.logs import setup_logging
from scribe.node.membership import MembershipError
from scribe.node.node import Node, NodeStartError, install_signal_handlers

PROG = "scribe-node"
EXIT_START_FAILED = 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Run one Scribe Ledger node.")
    parser.add_argument("--config", required=True, help="the node's TOML config file")
    parser.add_argument("--node-id", type=int, help="override [node] id from the config")
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    parser.add_argument("--log-file", help="append logs to this file instead of stderr")
    parser.add_argument(
        "--rejoin",
        action="store_true",
        help="start although this member's data_dir was lost (empty): catch up from the leader",
    )
    parser.add_argument(
        "--enable-fault-injection",
        action="store_true",
        help="test only: apply <data_dir>/fault-control.json at run time (scribe.node.faults)",
    )
    return parser.parse_args(argv)


async def _serve(node: Node) -> None:
    install_signal_handlers(node)
    # The markers are written once the node is up, so a start that fails early leaves none
    await node.serve(ready=lambda running: membership.record(running.config))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = load_config_or_exit(args.config, args.node_id, prog=PROG)
    context = setup_logging(config.node_id, args.log_level, args.log_file)
    try:
        membership.check(config, rejoin=args.rejoin)
    except MembershipError as exc:
        print(f"{PROG}: cannot start node {config.node_id}: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    node = Node(config, context_filter=context, fault_injection=args.enable_fault_injection)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(node))
    except NodeStartError as exc:
        print(f"{PROG}: cannot start node {config.node_id}: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    except CorruptionError as exc:
        # Protocol-aware recovery: a damaged entry inside the log is never truncated away (the
        # node would then vote and serve with a log shorter than what it acknowledged).
        print(
            f"{PROG}: node {config.node_id} stops: its log is corrupt: {exc}. The log was not "
            "truncated; restore the data directory, or remove it and start the node with "
            "--rejoin to copy the log from the leader",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    except (ScribeError, OSError) as exc:  # OSError: the disk failed (EIO on fsync, ENOSPC)
        logging.getLogger("scribe.node").critical("node failed: %s", exc, exc_info=True)
        return EXIT_START_FAILED
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
