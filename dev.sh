#!/usr/bin/env bash
# Developer entry point: ./dev.sh setup | up | test | lint | fmt | bench
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "dev.sh: creating $VENV" >&2
        "$PY" -m venv "$VENV"
    fi
    # Re-install when setup.cfg changed since the last install (or never installed).
    if [ ! -f "$VENV/.installed" ] || [ setup.cfg -nt "$VENV/.installed" ]; then
        echo "dev.sh: installing scribe-ledger with its test extras" >&2
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e '.[test]'
        touch "$VENV/.installed"
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    setup)
        ensure_venv
        echo "ready: source $VENV/bin/activate"
        ;;
    up)
        ensure_venv
        if [ -f launcher/__main__.py ] && [ -d scribe/node ]; then
            exec "$VENV/bin/python" -m launcher up -n 3 "$@"
        fi
        exec "$VENV/bin/python" -m scribe "$@"
        ;;
    test)
        ensure_venv
        exec "$VENV/bin/python" -m pytest -n auto "$@"
        ;;
    lint)
        ensure_venv
        "$VENV/bin/ruff" format --check .
        exec "$VENV/bin/ruff" check .
        ;;
    fmt)
        ensure_venv
        "$VENV/bin/ruff" format .
        exec "$VENV/bin/ruff" check --fix .
        ;;
    bench)
        ensure_venv
        "$VENV/bin/python" tools/perf_test.py "$@"
        exec "$VENV/bin/python" -m pytest benchmarks -p no:xdist --benchmark-only -q
        ;;
    *)
        echo "usage: ./dev.sh setup|up|test|lint|fmt|bench [args]"
        echo "  setup  create .venv and install the project with its test extras"
        echo "  up     run the 3-node cluster (the embedded demo until the cluster exists)"
        echo "  test   run the test suite in parallel (pytest -n auto)"
        echo "  lint   ruff format --check and ruff check"
        echo "  fmt    ruff format and ruff check --fix"
        echo "  bench  tools/perf_test.py and the pytest-benchmark suite"
        [ "$cmd" = help ] && exit 0 || exit 2
        ;;
esac
