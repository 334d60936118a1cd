"""What both segment-file logs share (engines.segment and engines.raftlog): the data directory,
the list of segment files, and the recovery rule that tells a torn tail from mid-log corruption."""

from __future__ import annotations

import logging
import os
import struct

from crc32c import crc32c

from scribe.errors import LockedError
from scribe.limits import FRAME_PAYLOAD_BYTES_MAX

from . import fileio

log = logging.getLogger("scribe.engine")

_FRAME_HEAD = struct.Struct(">II")  # u32 payload length, u32 crc32c(payload): every frame's head
_U64 = struct.Struct(">Q")
_FOLLOW_SEARCH_HITS_MAX = 10_000


class SegmentFile:
    """One segment: the id of its first frame (a seq or a Raft index), its path, a read fd."""

    __slots__ = ("first", "path", "read_fd")

    def __init__(self, first: int, path: str, read_fd: int):
        self.first = first
        self.path = path
        self.read_fd = read_fd


def open_data_dir(path: str) -> tuple[str, int]:
    """Create the directory if needed (durably) and lock it; (absolute path, lock fd)."""
    path = os.path.abspath(path)
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    if created:
        fileio.fsync_dir(os.path.dirname(path))
    try:
        return path, fileio.lock_dir(path)
    except BlockingIOError:
        raise LockedError(f"{path} is open in another process (its LOCK file is held)") from None


def segment_names(directory: str, suffix: str, header_bytes: int, check_header) -> list[str]:
    """The segment files in log order, after removing a last one whose header never reached the
    disk (a crash while rolling: no frame can live in a file that short, so nothing is lost)."""
    names = sorted(n for n in fileio.listdir(directory) if n.endswith(suffix))
    if names:
        last = os.path.join(directory, names[-1])
        fd = fileio.open_read(last)
        try:
            head = fileio.pread(fd, header_bytes + 1, 0)
        finally:
            fileio.close(fd)
        if len(head) <= header_bytes and check_header(head):
            log.warning("removing %s: torn segment header from an interrupted roll", last)
            fileio.remove(last)
            names.pop()
    return names


def valid_frame_follows(
    data: bytes, bad_off: int, next_id: int, id_offset: int, payload_bytes_min: int
) -> bool:
    """Is there an intact frame after bad_off whose u64 id (at `id_offset` from the frame start)
    is one of the next few? If so the damage at bad_off is in the middle of the log (corruption,
    never truncated); if not, it is a torn tail."""
    hits = 0
    view = memoryview(data)
    for frame_id in range(next_id, next_id + 4):
        needle = _U64.pack(frame_id)
        h = data.find(needle, bad_off + 1)
        while h >= 0 and hits < _FOLLOW_SEARCH_HITS_MAX:
            hits += 1
            cand = h - id_offset
            if cand > bad_off and len(data) - cand >= _FRAME_HEAD.size:
                plen, crc = _FRAME_HEAD.unpack_from(data, cand)
                end = cand + _FRAME_HEAD.size + plen
                if payload_bytes_min <= plen <= FRAME_PAYLOAD_BYTES_MAX and end <= len(data):
                    if crc32c(view[cand + _FRAME_HEAD.size : end]) == crc:
                        return True
            h = data.find(needle, h + 1)
    return False
