"""tools/nemesis.py against real 3-node clusters: every nemesis for ~10 s, then the checks.

Each test starts its own cluster (own free ports, own tmp dir) through the tool, which stops only
the processes it started. A failing run leaves its history file and summary in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 10
RUN_TIMEOUT_S = 150

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_S + 30)

# The event each nemesis must have produced at least once (proof that it really ran).
EXPECTED_EVENT = {
    "kill-follower": "kill -9 follower",
    "kill-leader": "kill -9 leader",
    "pause": "SIGSTOP",
    "partition-majority": "partition",
    "partition-leader": "isolate leader",
    "bridge": "bridge",
    "crash-all": "kill -9 every node",
    "fsync": "stopped after the fsync failure",
}


def run_nemesis(tmp_path: Path, nemesis: str, seed: int) -> dict:
    report = tmp_path / "report.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "nemesis.py"),
            "--nemesis",
            nemesis,
            "--duration",
            str(DURATION_S),
            "--clients",
            "4",
            "--keys",
            "3",
            "--tick-ms",
            "50",
            "--seed",
            str(seed),
            "--check-timeout",
            "60",
            "--out",
            str(tmp_path),
            "--report",
            str(report),
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    output = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    assert report.exists(), output
    (summary,) = json.loads(report.read_text())
    assert result.returncode == 0, output
    return summary


@pytest.mark.parametrize("nemesis", sorted(EXPECTED_EVENT))
def test_cluster_survives(tmp_path, nemesis):
    summary = run_nemesis(tmp_path, nemesis, seed=sum(map(ord, nemesis)))
    assert summary["verdict"] == "pass", summary
    assert summary["linearizability"] == "pass"
    assert all(v == 0 for k, v in summary["ledger"].items() if k != "heads_checked")
    assert summary["ledger"]["heads_checked"] > 0
    assert summary["outcomes"]["ok"] > 50, summary["outcomes"]  # the cluster did serve
    events = [e["event"] for e in summary["events"]]
    assert EXPECTED_EVENT[nemesis] in events, events
    assert Path(summary["history"]).exists()
