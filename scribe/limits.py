"""Every limit of the system, in one place, with units in the names."""

KEY_BYTES_MAX = 4096
VALUE_BYTES_MAX_DEFAULT = 16 * 1024 * 1024
SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024
SEGMENT_BYTES_MIN = 4096
CACHE_BYTES_DEFAULT = 256 * 1024 * 1024
FLUSH_EVERY_MS_DEFAULT = 500
# A single frame may hold a key and a value at their limits plus headers; anything larger is corruption.
FRAME_PAYLOAD_BYTES_MAX = 1024 * 1024 * 1024
# Unsynced bytes kept in the write buffer before they are handed to the OS (not fsynced) to bound memory.
WRITE_BUFFER_BYTES_MAX = 8 * 1024 * 1024
# Values larger than this fraction of the cache are not cached: one huge value must not flush the cache.
CACHE_ENTRY_FRACTION = 8
# The largest value any engine accepts (a frame must hold the key, the value and its headers).
VALUE_BYTES_MAX_LIMIT = FRAME_PAYLOAD_BYTES_MAX - KEY_BYTES_MAX - 1024
