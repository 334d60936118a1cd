"""One transport node in its own process, driven over stdin/stdout (JSON lines).

Used by the conformance suite (run as a script, never imported by pytest):

    python transport_peer.py KIND NODE_ID PEERS_JSON RUN_DIR

PEERS_JSON maps node ids to [host, raft_port]. Commands on stdin:
    {"op": "send", "to": 2, "tag": 7, "sizes": [0, 1, 64], "retry_ms": 2000}
        sends make_frame(self, tag, i, size) for each size i, retrying a refused
        frame (send() returned False) until retry_ms elapsed; answers
        {"ev": "sent", "tag": 7, "ok": [true, ...]}
    {"op": "ping"}   answers {"ev": "pong"}
    {"op": "close"}  closes twice (idempotent), answers {"ev": "closed"}, exits 0
Events on stdout: {"ev": "ready"} once started, and for every frame received
{"ev": "recv", "from": 1, "len": 64, "crc": <zlib.crc32>, "src": 1, "tag": 7, "index": 0}
(src/tag/index decoded from the frame when it is at least 12 bytes long).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import time
import zlib

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import uvloop  # noqa: E402

import transports  # noqa: E402

_HEAD = struct.Struct(">III")
_PATTERN = bytes(range(256))


def make_frame(src: int, tag: int, index: int, size: int) -> bytes:
    """A deterministic frame: (src, tag, index) then a pattern shifted by index."""
    shift = index % 256
    pattern = _PATTERN[shift:] + _PATTERN[:shift]
    body = _HEAD.pack(src, tag, index) + pattern * (size // 256 + 1)
    return body[:size]


def describe(from_id: int, frame: bytes) -> dict:
    event = {"ev": "recv", "from": from_id, "len": len(frame), "crc": zlib.crc32(frame)}
    if len(frame) >= _HEAD.size:
        event["src"], event["tag"], event["index"] = _HEAD.unpack_from(frame)
    return event


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def send_all(transport: transports.Transport, command: dict) -> None:
    ok = []
    me = transport.node_id
    for index, size in enumerate(command["sizes"]):
        frame = make_frame(me, command["tag"], index, size)
        deadline = time.monotonic() + command.get("retry_ms", 0) / 1000
        sent = transport.send(command["to"], frame)
        while not sent and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            sent = transport.send(command["to"], frame)
        ok.append(sent)
    emit({"ev": "sent", "tag": command["tag"], "ok": ok})


async def receive_forever(transport: transports.Transport) -> None:
    while True:
        try:
            from_id, frame = await transport.recv()
        except transports.TransportClosedError:
            return
        emit(describe(from_id, frame))


async def main(kind: str, node_id: int, peers_json: str, run_dir: str) -> int:
    peers = {int(k): transports.PeerAddress(h, p) for k, (h, p) in json.loads(peers_json).items()}
    transport = transports.create(kind, node_id, peers, run_dir=run_dir)
    await transport.start()
    receiver = asyncio.create_task(receive_forever(transport))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit({"ev": "ready"})
    while True:
        line = await reader.readline()
        if not line:
            break  # the test went away: behave as close
        command = json.loads(line)
        if command["op"] == "send":
            await send_all(transport, command)
        elif command["op"] == "ping":
            emit({"ev": "pong"})
        elif command["op"] == "close":
            break
        else:
            raise ValueError(f"unknown command {command!r}")
    await transport.close()
    await transport.close()
    await receiver
    emit({"ev": "closed"})
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
