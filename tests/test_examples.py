"""The runnable programs: `python -m scribe`, the tutorial examples and tools/perf_test.py.

Each runs as a real subprocess in its own temporary working directory, as a user would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scribe import Ledger
from scribe.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROCESS_TIMEOUT_S = 60

DEMO_OUTPUT = """\
Simple Scribe Ledger Demo
=========================
Putting key-value pairs...
Getting values...
name: Simple Scribe Ledger
version: 0.1.0
language: Python
Key 'nonexistent' not found
Total keys: 3
"""


def run(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
        check=False,
    )


def run_ok(args: list[str], cwd: Path, stdin: str = "") -> str:
    proc = run(args, cwd, stdin)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# ---- python -m scribe --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["demo"]])
def test_python_m_scribe_prints_the_demo(tmp_path, args):
    assert run_ok(["-m", "scribe", *args], tmp_path) == DEMO_OUTPUT
    assert list(tmp_path.iterdir()) == []  # the demo's ledger is temporary


def test_main_returns_zero_and_help_lists_the_demo(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out == DEMO_OUTPUT
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "With no command" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("usage: scribe")


# ---- examples ----------------------------------------------------------------------------------


def test_basic_usage(tmp_path):
    out = run_ok([str(EXAMPLES / "basic_usage.py")], tmp_path)
    assert "Found: user:alice = Alice Smith" in out
    assert "Key 'user:carol' not found" in out
    assert "Flushed. Storage contains 3 keys" in out
    assert "After reopen: 3 keys, counter = 42" in out
    assert list(tmp_path.iterdir()) == []


def test_data_types_round_trip(tmp_path):
    out = run_ok([str(EXAMPLES / "data_types.py")], tmp_path)
    lines = [line for line in out.splitlines() if "round-trips:" in line]
    assert len(lines) == 7
    assert all(line.endswith("round-trips: True") for line in lines), out
    assert "User(name='Alice', age=30, email='alice@example.com')" in out


def test_binary_data_round_trip(tmp_path):
    out = run_ok([str(EXAMPLES / "binary_data.py")], tmp_path)
    assert "Read   256 bytes: [0, 1, 2, 3, 4] ... [253, 254, 255]" in out
    assert "All 256 byte values round-trip unchanged" in out


def test_database_management(tmp_path):
    out = run_ok([str(EXAMPLES / "database_management.py")], tmp_path)
    assert "Database size: 1000 keys" in out
    assert "Is empty: False" in out
    assert "After clear - Database size: 0 keys" in out
    assert "After clear - Is empty: True" in out
    assert "The ledger still holds 1001 records" in out
    assert list(tmp_path.iterdir()) == []


CLI_SCRIPT = """\
help
put user alice  smith jr
get user
put lonely
get
get a b
frobnicate now

list
put color blue
put user bob
history user
delete user
delete user
get user
delete
history never
list
quit
put after quit
"""


def test_cli_store_session_and_persistence(tmp_path):
    data = tmp_path / "store"
    out = run_ok([str(EXAMPLES / "cli_store.py"), "--data", str(data)], tmp_path, CLI_SCRIPT)
    lines = out.splitlines()
    assert lines[0] == f"Scribe store in {data}: 0 keys. Type 'help' for commands."
    assert "  put <key> <value>" in out and "  history <key>" in out
    expected_in_order = [
        "Stored: user = alice  smith jr (record #0)",
        "Found: user = alice  smith jr",
        "error: usage: put <key> <value>",
        "error: usage: get <key>",
        "error: usage: get <key>",
        "error: unknown command 'frobnicate' (type 'help' for the list)",
        "Database contains 1 keys",
        "Stored: color = blue (record #1)",
        "Stored: user = bob (record #2)",
        "Deleted: user (record #3)",
        "Key 'user' not found",
        "Key 'user' not found",
        "error: usage: delete <key>",
        "Key 'never' was never written",
        "Database contains 1 keys",
        "Bye",
    ]
    positions = [lines.index(line) for line in expected_in_order if line in lines]
    assert len(positions) == len(expected_in_order), out
    assert lines[-1] == "Bye" and "after quit" not in out
    history = [line for line in lines if line.startswith("  #")]
    assert [h.split()[0] for h in history] == ["#0", "#2"]
    assert history[0].endswith("put = alice  smith jr") and history[1].endswith("put = bob")

    with Ledger(str(data)) as led:
        assert led.get("color") == b"blue"
        assert led.get("user") is None
        assert [v.value for v in led.history("user")] == [b"alice  smith jr", b"bob", b""]

    # A second session sees the first one's data; end of input (no quit) ends it cleanly.
    out = run_ok([str(EXAMPLES / "cli_store.py"), "--data", str(data)], tmp_path, "get color\nlist")
    assert "Found: color = blue" in out and "Database contains 1 keys" in out
    assert out.splitlines()[-1] == "Bye"


def test_cli_store_default_dir_is_relative_to_cwd(tmp_path):
    run_ok([str(EXAMPLES / "cli_store.py")], tmp_path, "put k v\n")
    with Ledger(str(tmp_path / "cli_store_data")) as led:
        assert led.get("k") == b"v"


# ---- tools/perf_test.py ------------------------------------------------------------------------


def test_perf_test_runs_and_prints_the_table(tmp_path):
    out = run_ok(
        [
            str(ROOT / "tools" / "perf_test.py"),
            "--ops",
            "100",
            "--no-peers",
            "--dir",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert "| Ops | PUT (ops/sec, total ms)" in out
    row = next(line for line in out.splitlines() if line.startswith("| 100 |"))
    assert row.count("ms)") == 3
    assert "Scribe  Sustained (10,000 ops) -> MIXED:" in out
    assert "best of 3" in out
    assert "SQLite" not in out.split("Scribe PUT:")[1]
    assert [p.name for p in tmp_path.iterdir()] == []  # scratch directories removed


def test_perf_test_open_test(tmp_path):
    out = run_ok(
        [str(ROOT / "tools" / "perf_test.py"), "--open-test", "2000", "--repeat", "1"],
        tmp_path,
    )
    assert "Wrote 2,000 records" in out
    assert "Ledger(path) open, in a fresh process: best" in out
    assert "MiB after open" in out


@pytest.mark.parametrize("bad", [["--ops", "ten"], ["--ops", "0"], ["--repeat", "0"], ["--x"]])
def test_perf_test_bad_usage_exits_2(tmp_path, bad):
    proc = run([str(ROOT / "tools" / "perf_test.py"), *bad], tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "error:" in proc.stderr


# ---- tools/bench_transport.py ------------------------------------------------------------------


def test_bench_transport_measures_every_kind_between_two_processes(tmp_path):
    out = run_ok(
        [
            str(ROOT / "tools" / "bench_transport.py"),
            "--pings",
            "200",
            "--small-frames",
            "2000",
            "--large-frames",
            "50",
        ],
        tmp_path,
    )
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[3:] if line.strip()}
    assert sorted(rows) == ["ipc", "memory", "shm", "tcp"]
    for kind, cells in rows.items():
        assert len(cells) == 6, kind
        assert all(float(c.replace(",", "")) > 0 for c in cells), (kind, cells)


# ---- tools/bench_floor.py ----------------------------------------------------------------------


def test_bench_floor_measures_each_fixed_cost_and_adds_them_up(tmp_path):
    out = run_ok(
        [
            str(ROOT / "tools" / "bench_floor.py"),
            "--requests",
            "40",
            "--pings",
            "40",
            "--syncs",
            "10",
            "--writers",
            "2",
            "--transport",
            "shm",
            "--dir",
            str(tmp_path),
            "--json",
        ],
        tmp_path,
    )
    report = json.loads(out)
    steps = {row["step"]: row for row in report["steps"]}
    assert list(steps) == [
        "http",
        "http + hop",
        "transport shm round trip",
        "fsync, 2 writers at once",
    ]
    assert steps["fsync, 2 writers at once"]["samples"] == 20
    assert all(0 < row["p50_ms"] <= row["p99_ms"] for row in steps.values()), steps
    added = sum(row["p50_ms"] for name, row in steps.items() if name != "http")
    assert report["floor_p50_ms"] == pytest.approx(added, abs=0.002)
    assert not list(tmp_path.glob("bench-floor-*"))  # the fsync files are gone


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--writers", "0"], "must be a positive integer"),
        (["--requests", "x"], "invalid positive value"),
        (["--transport", "memory"], "invalid choice"),
        (["--dir", "/nonexistent/bench-floor"], "is not a writable directory"),
    ],
)
def test_bench_floor_bad_usage_exits_2(tmp_path, bad, message):
    proc = run([str(ROOT / "tools" / "bench_floor.py"), *bad], tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and message in proc.stderr


# ---- tools/bench_cluster.py (against a cluster: tests/cluster/test_cluster_basic.py) ----------


@pytest.mark.parametrize(
    "bad, message",
    [
        (["--pids", "abc"], "'abc' is not a process id"),
        (["--pids", "999999999"], "no process 999999999"),
        (["--pids", ","], "no process id given"),
        (["--etcd-pids", str(os.getpid())], "--etcd-pids needs --etcd"),
        (["--clients", "0"], "must be positive"),
    ],
)
def test_bench_cluster_bad_usage_exits_2(tmp_path, bad, message):
    proc = run([str(ROOT / "tools" / "bench_cluster.py"), *bad], tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and message in proc.stderr
