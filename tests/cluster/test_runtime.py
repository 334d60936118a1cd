"""NodeRuntime in one process: a one-node group over the memory transport and a MemoryRaftStorage.

The real-process tests drive the runtime through HTTP; these check what is hard to reach from
there: a failure inside the pump (a failed fsync) stops the node without acknowledging a write.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random

import pytest
import uvloop

import transports
from scribe.errors import OutcomeUnknownError, ScribeError
from scribe.http.backend import WriteResult
from scribe.node.runtime import NodeRuntime
from scribe.raft import EntryType, RaftConfig, RaftCore
from scribe.raft.storage import MemoryRaftStorage

pytestmark = pytest.mark.timeout(60)

TICK_MS = 5


class _Log(MemoryRaftStorage):
    """A StateLog: every NORMAL entry is one record; sync() can be made to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.applied_index = 0
        self.records = 0
        self.fail_sync: OSError | None = None
        self.synced = 0

    def sync(self) -> None:
        if self.fail_sync is not None:
            raise self.fail_sync
        super().sync()
        self.synced += 1

    def apply_entries(self, entries):
        results = []
        for entry in entries:
            if entry.type == EntryType.NORMAL and entry.data:
                self.records += 1
                results.append((entry.index, self.records, self.records))
            self.applied_index = entry.index
        return results


async def _single_node(tmp_path) -> tuple[NodeRuntime, _Log, asyncio.Task]:
    state_log = _Log()
    core = RaftCore(1, [1], state_log, RaftConfig(), random.Random(7))
    transport = transports.create(
        "memory", 1, {1: transports.PeerAddress("127.0.0.1", 1)}, run_dir=str(tmp_path)
    )
    await transport.start()
    runtime = NodeRuntime(core, state_log, transport, TICK_MS)
    task = asyncio.create_task(runtime.run())
    while runtime.leader_id != 1:
        await asyncio.sleep(TICK_MS / 1000)
    return runtime, state_log, task


async def _result(future: concurrent.futures.Future):
    return await asyncio.wait_for(asyncio.wrap_future(future), 5)


def test_writes_from_another_thread_are_acknowledged_after_sync_in_order(tmp_path):
    async def scenario():
        runtime, state_log, task = await _single_node(tmp_path)
        loop = asyncio.get_running_loop()
        # Submitted from a thread, as Waitress threads do; all arrive before the loop turns.
        futures = await loop.run_in_executor(
            None, lambda: [runtime.submit_write(b"w%d" % i) for i in range(50)]
        )
        results = [await _result(f) for f in futures]
        assert all(isinstance(r, WriteResult) for r in results)
        assert [r.seq for r in results] == list(range(1, 51))
        assert results == sorted(results, key=lambda r: r.index)
        # Group commit: 50 writes queued together need far fewer than 50 fsyncs.
        assert state_log.synced < 25
        runtime.stop()
        await task

    uvloop.run(scenario())


def test_failed_fsync_stops_the_runtime_and_acknowledges_nothing(tmp_path):
    async def scenario():
        runtime, state_log, task = await _single_node(tmp_path)
        state_log.fail_sync = OSError(5, "Input/output error")
        future = runtime.submit_write(b"never acknowledged")
        with pytest.raises(OSError, match="Input/output error"):
            await asyncio.wait_for(task, 5)
        with pytest.raises(OutcomeUnknownError):
            future.result(1)
        assert state_log.records == 0
        # A stopped runtime refuses new work with a typed error instead of hanging.
        with pytest.raises(ScribeError):
            runtime.submit_write(b"after the failure").result(1)

    uvloop.run(scenario())


def test_followers_learn_the_commit_index_without_a_heartbeat_or_another_write(tmp_path):
    """The leader's commit-notice timer: a lone write reaches the followers' state machines
    although no tick ever fires (no heartbeat) and no later proposal carries its commit."""

    async def scenario():
        ids = [1, 2, 3]
        peers = {i: transports.PeerAddress("127.0.0.1", i) for i in ids}
        runtimes, tasks = [], []
        for i in ids:
            state_log = _Log()
            core = RaftCore(i, ids, state_log, RaftConfig(), random.Random(i))
            transport = transports.create("memory", i, peers, run_dir=str(tmp_path))
            await transport.start()
            runtimes.append(NodeRuntime(core, state_log, transport, tick_ms=3_600_000))
            tasks.append(asyncio.create_task(runtimes[-1].run()))
        leader = runtimes[0]
        while leader.loop is None:
            await asyncio.sleep(0)
        leader.core.campaign()
        leader._schedule()
        while leader.leader_id != 1:
            await asyncio.sleep(0.001)
        result = await _result(leader.submit_write(b"alone"))
        for runtime in runtimes:
            while runtime.log.applied_index < result.index:
                await asyncio.sleep(0.001)
            assert runtime.log.records == 1
        for runtime, task in zip(runtimes, tasks, strict=True):
            runtime.stop()
            await task

    uvloop.run(asyncio.wait_for(scenario(), 20))
