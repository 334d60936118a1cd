"""Every limit of the node runtime, in one place, with units in the names."""

# A write is answered 504 outcome_unknown when its entry is not applied within this time.
WRITE_TIMEOUT_MS = 5000
# A linearizable read is answered 503 no_leader when no leader confirmed a read index in time.
READ_TIMEOUT_MS = 5000
# Linearizable reads wait for the ReadIndex round in flight to finish and share the next one;
# after this long without an answer (a lost message) a new round starts anyway.
READ_ROUND_OVERLAP_MS = 50
# The HTTP thread waits this much longer than the loop-side deadline, so the loop's answer wins.
THREAD_WAIT_SLACK_MS = 1000
# On SIGTERM a leader hands leadership over and waits at most this long for it to move.
TRANSFER_WAIT_MS = 2000
# After the transfer, pending work gets this long to drain before the node closes.
STOP_DRAIN_MS = 300
# Waitress worker threads of a node: each blocks on one client request while Raft works, so
# there must be enough of them for concurrent clients to share one fsync (group commit).
HTTP_THREADS = 32
# Proposals drained into one Ready: bounds a Ready's size under a flood of writes.
PROPOSALS_PER_READY_MAX = 4096
# (index -> term, last seq) of recently applied entries, kept for writes placed after they applied.
APPLIED_RESULTS_KEPT = 65536
# A leader tells its followers a new commit index with the next proposal's appends; when none
# comes within this long, with an empty append. Bounds how far a follower's applied state (its
# stale reads) lags the leader's when writes stop; linearizable reads never wait for it.
COMMIT_NOTICE_DELAY_MS = 5
# How often the loop sweeps waiters past their deadline.
SWEEP_INTERVAL_MS = 200
# The GIL switch interval of a node process. The Raft loop thread shares the GIL with the HTTP
# threads; at CPython's default (5 ms) it waits that long behind them for every Ready.
GIL_SWITCH_INTERVAL_S = 0.001
# ...unless this many client requests are in flight on the node: then the HTTP threads hand the
# GIL around less often with the default interval (scribe.node.gil).
GIL_BUSY_REQUESTS_MIN = 12
GIL_SWITCH_INTERVAL_BUSY_S = 0.005
# The HTTP front on the Raft loop (scribe.node.front): connections it serves itself before new ones
# go to Waitress, the longest request head it parses (longer ones go to Waitress), bytes per recv(),
# connections accepted per wake-up of the listening socket.
FRONT_CONNECTIONS_MAX = 1000
FRONT_HEAD_BYTES_MAX = 8192
FRONT_RECV_BYTES = 64 * 1024
# Bytes of pipelined requests a connection may buffer while its current request is in flight;
# past this the loop stops reading it until the answer is written.
FRONT_PIPELINED_BYTES_MAX = 64 * 1024
FRONT_ACCEPTS_PER_WAKE_MAX = 64
