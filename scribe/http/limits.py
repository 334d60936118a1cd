"""Every limit of the HTTP API, in one place, with units in the names."""

# KEY_BYTES_MAX (the ledger's, DESIGN §3) is checked here too, so a long key is a 400 before any I/O;
# VALUE_BYTES_MAX_DEFAULT is create_app's max_value_bytes when the caller gives none.
from scribe.limits import KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT  # noqa: F401 (re-exported)

# One POST /batch becomes one Raft entry: keep it small enough to replicate in one message.
BATCH_OPS_MAX = 1000
RANGE_LIMIT_DEFAULT = 1000
RANGE_LIMIT_MAX = 10_000
RECORDS_LIMIT_DEFAULT = 1000
RECORDS_LIMIT_MAX = 10_000
# JSON bodies (/put, /batch) may exceed max_value_bytes by this much for quoting, keys and framing.
JSON_BODY_OVERHEAD_BYTES = 1024 * 1024
# Bodies are read in chunks of this size, so a streamed (chunked) body is capped as it arrives.
BODY_READ_CHUNK_BYTES = 64 * 1024
# Seconds a client should wait before retrying a 503 no_leader (an election takes about a second).
RETRY_AFTER_S = 1
# Waitress worker threads when the caller does not choose.
SERVER_THREADS_DEFAULT = 8
# A connection idle (or trickling a request) this long is closed: slow clients cannot hold the
# worker threads. Waitress checks every CHANNEL_CLEANUP_INTERVAL_S.
CHANNEL_TIMEOUT_S = 30
CHANNEL_CLEANUP_INTERVAL_S = 5
