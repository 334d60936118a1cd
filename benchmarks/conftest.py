"""pytest-benchmark suite of scribe.Ledger, the counterpart of the seed's criterion benches.

Run it explicitly (the repository's `pytest -n auto` collects only tests/):

    .venv/bin/python -m pytest benchmarks --benchmark-only -p no:xdist

Benchmark modules are named bench_*.py; this hook makes pytest collect them, and since a
conftest.py applies only to its own directory, nothing else in the repository is affected.
"""

from __future__ import annotations

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
