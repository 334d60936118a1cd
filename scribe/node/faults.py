"""Test-only fault injection into a running node: absent unless the node is started with
`--enable-fault-injection` (the launcher's `up --enable-fault-injection` does that).

Such a node polls `<data_dir>/fault-control.json` (written atomically by
`python -m launcher faults ...`) and applies it at run time:

    {"isolate": [2, 3],          drop every Raft frame to and from these peers
     "drop_probability": 0.0,    drop any other frame with this probability
     "seed": 0,                  seeds those drops
     "fsync_fail": false}        make every later sync of the log raise OSError (EIO)

A missing file means no fault. Partitions act at the transport (transports.FaultFilter), so the
HTTP API stays reachable from clients on both sides, as in a real network partition between
servers. A failed fsync propagates out of the Raft loop like a real one: the node stops without
acknowledging anything that waited on it (its waiters get 504), and the launcher can start it again.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

from transports import FaultFilter

log = logging.getLogger("scribe.node")

CONTROL_FILE = "fault-control.json"
FAULT_POLL_INTERVAL_MS = 50


def control_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / CONTROL_FILE


class FaultControl:
    """Applies the control file to one node's transport and log."""

    def __init__(self, path: Path, transport: Any, state_log: Any) -> None:
        self.path = path
        self.transport = transport
        self.state_log = state_log
        self._seen: tuple[int, int] | None = None
        self._fsync_armed = False
        self._real_sync = state_log.sync

    def _failing_sync(self) -> None:
        if self._fsync_armed:
            log.critical("injected fsync failure: the log cannot be made durable")
            raise OSError(errno.EIO, "injected fsync failure (fault injection)")
        self._real_sync()

    def poll(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None:
                self._seen = None
                self.apply({})
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._seen:
            return
        self._seen = stamp
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("fault control %s unreadable, ignored: %s", self.path, exc)
            return
        if not isinstance(doc, dict):
            log.warning("fault control %s is not a JSON object, ignored", self.path)
            return
        self.apply(doc)

    def apply(self, doc: dict[str, Any]) -> None:
        isolate = {int(p) for p in doc.get("isolate", [])}
        drop = float(doc.get("drop_probability", 0.0))
        faults = self.transport.faults
        if faults is None:
            faults = self.transport.faults = FaultFilter(seed=int(doc.get("seed", 0)))
        faults.heal()
        faults.isolate(isolate)
        faults.set_drop_probability(drop, seed=int(doc.get("seed", 0)))
        if doc.get("fsync_fail") and not self._fsync_armed:
            self._fsync_armed = True
            # An instance attribute shadows LedgerLog.sync: the runtime looks it up per Ready.
            self.state_log.sync = self._failing_sync
        log.warning(
            "fault injection: isolated from %s, drop probability %.2f, fsync %s",
            sorted(isolate) or "none",
            drop,
            "failing" if self._fsync_armed else "ok",
        )

    async def run(self) -> None:
        while True:
            self.poll()
            await asyncio.sleep(FAULT_POLL_INTERVAL_MS / 1000.0)


def start_fault_control(
    data_dir: str | os.PathLike, transport: Any, state_log: Any
) -> asyncio.Task:
    """Start polling the node's control file on the running loop; cancel the task to stop."""
    log.warning("fault injection is ENABLED (test only): control file %s", control_path(data_dir))
    control = FaultControl(control_path(data_dir), transport, state_log)
    control.poll()
    return asyncio.create_task(control.run(), name="fault-control")
