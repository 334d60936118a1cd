#!/usr/bin/env bash
# Start the 3-node tutorial cluster in the background (HTTP 8001-8003, Raft 9001-9003).
# Extra arguments go to `python -m launcher up`, e.g. --transport ipc or -n 5 or --dir ./other.
# Stop it with scripts/stop-cluster.sh (same --dir).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x ./.venv/bin/python ]; then PYTHON=./.venv/bin/python; else PYTHON=python3; fi
exec "$PYTHON" -m launcher up --detach "$@"
