#!/usr/bin/env bash
# Stop the cluster started by scripts/start-cluster.sh: SIGTERM to each node (a leader hands its
# leadership over first), SIGKILL after a grace period. Extra arguments: --dir DIR, --grace S.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x ./.venv/bin/python ]; then PYTHON=./.venv/bin/python; else PYTHON=python3; fi
exec "$PYTHON" -m launcher down "$@"
