"""All file I/O of the storage engines goes through here, so tests can inject faults by patching."""

from __future__ import annotations

import fcntl
import os

O_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def open_append(path: str) -> int:
    fd = os.open(path, O_APPEND_FLAGS, 0o644)
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def open_read(path: str) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


def write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def pread(fd: int, size: int, offset: int) -> bytes:
    return os.pread(fd, size, offset)


def fsync(fd: int) -> None:
    os.fsync(fd)


_FDATASYNC = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync: a full fsync there


def fdatasync(fd: int) -> None:
    """fsync without the metadata a later read does not need (mtime); a size change is still
    flushed."""
    _FDATASYNC(fd)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def file_size(path: str) -> int:
    return os.path.getsize(path)


def truncate(path: str, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def write_file_atomic(path: str, data: bytes) -> None:
    """Write a whole file by rename, so readers see the old file or the new one, never a mix."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def remove(path: str) -> None:
    os.remove(path)


def listdir(path: str) -> list[str]:
    return os.listdir(path)


def close(fd: int) -> None:
    os.close(fd)


def lock_dir(path: str) -> int:
    """Take an exclusive advisory lock on path/LOCK; raises BlockingIOError when held elsewhere."""
    fd = os.open(
        os.path.join(path, "LOCK"), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644
    )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def unlock_dir(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
