"""The test-only fault hooks without processes: the launcher's control files, the node's reader."""

from __future__ import annotations

import errno
import json
import os

import pytest

from launcher import faults
from launcher.layout import ClusterDir, ClusterSpec, LauncherError
from scribe.node.faults import FaultControl, control_path


@pytest.fixture
def cdir(tmp_path):
    cdir = ClusterDir(tmp_path / "c")
    cdir.write_configs(ClusterSpec(3, "tcp", 20001, 20011, 50, 10, 3))
    return cdir


def controls(cdir):
    return {i: faults.read_control(cdir, i) for i in cdir.node_ids()}


def test_faults_refused_unless_the_cluster_was_started_with_fault_injection(cdir):
    with pytest.raises(LauncherError, match="enable-fault-injection"):
        faults.apply(cdir, "isolate", ["2"])
    assert faults.node_args(cdir, 1) == []


def test_partition_isolate_bridge_drop_heal(cdir):
    faults.set_enabled(cdir, True)
    assert faults.node_args(cdir, 1) == [faults.NODE_FLAG]
    faults.apply(cdir, "partition", ["1,2", "3"])
    assert {i: d["isolate"] for i, d in controls(cdir).items()} == {1: [3], 2: [3], 3: [1, 2]}
    faults.apply(cdir, "isolate", ["2"])
    assert {i: d["isolate"] for i, d in controls(cdir).items()} == {1: [2], 2: [1, 3], 3: [2]}
    faults.apply(cdir, "bridge", ["1", "3", "2"])
    assert {i: d["isolate"] for i, d in controls(cdir).items()} == {1: [2], 2: [1], 3: []}
    faults.apply(cdir, "drop", ["0.25"], seed=5)
    assert all(d["drop_probability"] == 0.25 for d in controls(cdir).values())
    faults.apply(cdir, "heal", [])
    assert controls(cdir) == {1: {}, 2: {}, 3: {}}


def test_bad_fault_commands_are_refused(cdir):
    faults.set_enabled(cdir, True)
    for action, args in [
        ("partition", ["1,2", "2,3"]),
        ("isolate", ["9"]),
        ("bridge", ["1", "2"]),
        ("drop", ["1.5"]),
        ("fsync-fail", []),
        ("isolate", ["x"]),
    ]:
        with pytest.raises(LauncherError):
            faults.apply(cdir, action, args)


def test_a_restarted_node_gets_a_working_disk(cdir):
    faults.set_enabled(cdir, True)
    faults.apply(cdir, "fsync-fail", ["2"])
    assert controls(cdir)[2]["fsync_fail"] is True
    assert faults.node_args(cdir, 2) == [faults.NODE_FLAG]
    assert controls(cdir)[2]["fsync_fail"] is False
    faults.set_enabled(cdir, False)  # `up` without the flag: no control files, no flag
    assert controls(cdir) == {1: {}, 2: {}, 3: {}}
    assert faults.node_args(cdir, 2) == []


class FakeTransport:
    faults = None


class FakeLog:
    def __init__(self):
        self.synced = 0

    def sync(self):
        self.synced += 1


def test_node_applies_the_control_file(tmp_path):
    transport, state_log = FakeTransport(), FakeLog()
    control = FaultControl(control_path(tmp_path), transport, state_log)
    control.poll()
    assert transport.faults is None  # no file: no filter at all
    path = control_path(tmp_path)
    path.write_text(json.dumps({"isolate": [2], "drop_probability": 0.0}))
    control.poll()
    assert transport.faults.isolated == {2}
    assert not transport.faults.allow_send(2) and transport.faults.allow_send(3)
    state_log.sync()
    assert state_log.synced == 1
    tmp = path.with_name("x.tmp")
    tmp.write_text(json.dumps({"fsync_fail": True}))
    os.replace(tmp, path)
    control.poll()
    assert transport.faults.isolated == frozenset()
    with pytest.raises(OSError) as info:
        state_log.sync()
    assert info.value.errno == errno.EIO
    path.unlink()
    control.poll()
    with pytest.raises(OSError):  # a failed disk stays failed until the node restarts
        state_log.sync()
