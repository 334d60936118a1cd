"""Assemble and run one node: config -> LedgerLog -> RaftCore -> transport -> runtime -> HTTP.

run_node(config) owns the process's life: it binds the HTTP port and the Raft transport (clear
errors when either is taken), serves until SIGTERM/SIGINT, then stops gracefully: hand leadership
over if leader, stop accepting requests, finish the loop, close the transport and the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import transports
from scribe.config import NodeConfig
from scribe.errors import ScribeError
from scribe.http import ServerThread, create_app, make_server
from scribe.node import membership
from scribe.node.backend import EncodeOps, RaftBackend
from scribe.node.front import LoopFront
from scribe.node.limits import HTTP_THREADS, STOP_DRAIN_MS, TRANSFER_WAIT_MS
from scribe.node.metrics import NodeMetrics
from scribe.node.peer_keys import curve_keys_for
from scribe.node.runtime import NodeRuntime, StateLog
from scribe.raft import RaftConfig, RaftCore

log = logging.getLogger("scribe.node")


class NodeStartError(ScribeError):
    """The node cannot start: a port is taken, the data directory is locked, and so on."""


@dataclass
class OpenedLog:
    state_log: StateLog
    encode_ops: EncodeOps
    close: Callable[[], None]


def open_ledger_log(config: NodeConfig) -> OpenedLog:
    """The product storage: engines.raftlog.LedgerLog in the node's data_dir."""
    from engines.raftlog import LedgerLog, encode_ops
    from scribe.errors import LockedError

    try:
        ledger_log = LedgerLog(
            str(config.node.data_dir),
            segment_bytes=config.storage.segment_size,
            cache_bytes_max=config.storage.max_cache_size,
        )
    except LockedError as exc:
        raise NodeStartError(
            f"data_dir {str(config.node.data_dir)!r} is in use by another process: {exc}"
        ) from None
    return OpenedLog(ledger_log, encode_ops, ledger_log.close)


def raft_config(config: NodeConfig) -> RaftConfig:
    c = config.consensus
    return RaftConfig(
        election_timeout_ticks=c.election_timeout,
        heartbeat_timeout_ticks=c.heartbeat_timeout,
        max_entries_per_msg=c.max_log_entries,
    )


def run_dir(config: NodeConfig) -> str:
    """The cluster directory the transports share: the directory of the config file (the
    launcher writes every node's config into one DIR; hand-written configs live side by side)."""
    return str(config.path.resolve().parent)


class Node:
    """One running node. `await node.serve()` until a stop is requested."""

    def __init__(
        self,
        config: NodeConfig,
        open_log: Callable[[NodeConfig], OpenedLog] = open_ledger_log,
        transport_kind: str | None = None,
        context_filter: Any = None,
        fault_injection: bool = False,
    ) -> None:
        self.config = config
        self.fault_injection = fault_injection  # test only: see scribe.node.faults
        self._open_log = open_log
        self._transport_kind = transport_kind or config.network.transport
        self._context_filter = context_filter
        self._stop_requested: asyncio.Event | None = None
        self.runtime: NodeRuntime | None = None
        self.http: ServerThread | None = None
        self.front: LoopFront | None = None

    def request_stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def serve(self, ready: Callable[[Node], None] | None = None) -> None:
        config = self.config
        opened = self._open_log(config)
        try:
            await self._serve_with_log(opened, ready)
        finally:
            opened.close()

    async def _serve_with_log(self, opened: OpenedLog, ready) -> None:
        config = self.config
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        voters = [m.id for m in config.cluster.nodes]
        state_log = opened.state_log
        core = RaftCore(
            config.node_id,
            voters,
            state_log,
            raft_config(config),
            random.Random(os.urandom(16)),
            applied_index=state_log.applied_index,
            rejoining=membership.rejoin_pending(config),
        )
        if core.rejoining:
            log.warning(
                "node %s rejoins with a lost log: it will not vote or campaign until it has "
                "caught up with the leader",
                config.node_id,
            )
        metrics = NodeMetrics(config.node_id, core.peers)
        runtime = NodeRuntime(
            core,
            state_log,
            None,
            config.consensus.tick_ms,
            metrics,
            on_rejoined=lambda: membership.rejoin_done(config),
        )
        self.runtime = runtime
        if self._context_filter is not None:
            self._context_filter.runtime = runtime
        backend = RaftBackend(runtime, config, opened.encode_ops)
        app = create_app(
            backend,
            max_value_bytes=config.storage.max_value_bytes,
            api_token=config.security.api_token,
        )
        try:
            # Bound but not accepting: the loop front accepts and hands Waitress what it does
            # not answer itself.
            server = make_server(
                app,
                config.network.listen_addr,
                config.network.client_port,
                HTTP_THREADS,
                accept=False,
            )
        except OSError as exc:  # PortInUseError says which port; others (bad address) too
            raise NodeStartError(f"HTTP: {exc.strerror or exc}") from None
        try:
            peers = {
                m.id: transports.PeerAddress(m.host, m.raft_port) for m in config.cluster.nodes
            }
            try:
                curve_keys = curve_keys_for(config, self._transport_kind)
                transport = transports.create(
                    self._transport_kind,
                    config.node_id,
                    peers,
                    run_dir=run_dir(config),
                    curve_keys=curve_keys,
                )
                await transport.start()
            except transports.TransportError as exc:
                raise NodeStartError(
                    f"Raft transport {self._transport_kind} on port {config.network.raft_port}: {exc}"
                ) from None
        except BaseException:
            server.close()
            raise
        runtime.transport = transport
        fault_task = None
        if self.fault_injection:
            from scribe.node.faults import start_fault_control

            fault_task = start_fault_control(config.node.data_dir, transport, state_log)
        log.info(
            "node %s up: HTTP http://%s:%s, Raft %s%s port %s, %d voters, applied index %s",
            config.node_id,
            config.network.listen_addr,
            server.effective_port,
            self._transport_kind,
            " (curve)" if curve_keys is not None else "",
            config.network.raft_port,
            len(voters),
            state_log.applied_index,
        )
        run_task = asyncio.create_task(runtime.run(), name="raft-runtime")
        self.http = ServerThread(server)
        self.front = front = LoopFront(server, app.wsgi_app, backend)
        front.start()
        try:
            if ready is not None:
                ready(self)
            stop_wait = asyncio.create_task(self._stop_requested.wait())
            done, _ = await asyncio.wait({run_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            if run_task in done:
                run_task.result()  # the loop died: raise its error
                raise ScribeError("the Raft loop ended unexpectedly")
            await self._graceful_stop(loop, run_task)
        finally:
            if fault_task is not None:
                fault_task.cancel()
            front.stop_accepting()
            if not run_task.done():
                runtime.stop()
                await asyncio.gather(run_task, return_exceptions=True)
            front.close()
            if self.http is not None:
                await loop.run_in_executor(None, self.http.stop)
                self.http = None
            await transport.close()

    async def _graceful_stop(self, loop: asyncio.AbstractEventLoop, run_task: asyncio.Task) -> None:
        runtime = self.runtime
        log.info("stopping")
        moved = await runtime.transfer_leadership(TRANSFER_WAIT_MS / 1000.0)
        if not moved:
            log.warning("stopping while still leader: the others will elect a new one")
        # Stop accepting requests; those in flight finish while the loop still runs.
        self.front.stop_accepting()
        http, self.http = self.http, None
        stopping = loop.run_in_executor(None, http.stop)
        await asyncio.sleep(STOP_DRAIN_MS / 1000.0)
        runtime.stop()
        await asyncio.gather(run_task, return_exceptions=True)
        await stopping
        log.info("stopped")


def install_signal_handlers(node: Node) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.request_stop)
