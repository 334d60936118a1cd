#!/usr/bin/env python3
"""End-to-end checks of the HTTP API of a running node (or cluster): PASS/FAIL per check.

    python tools/e2e_test.py                          # the tutorial cluster, http://127.0.0.1:8001..8003
    python tools/e2e_test.py http://127.0.0.1:8001    # one node (a single-node server works too)

Writes go to the first URL, reads to every URL. Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from checklib import Checks, Node, expect, node_urls, quote  # noqa: E402

from scribe.merkle import verify_inclusion_path  # noqa: E402
from scribe.records import encode_leaf_data, leaf_hash  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="*", help="node URLs (default: the tutorial's three)")
    args = parser.parse_args(argv)
    urls = node_urls(args.urls)
    writer = Node(urls[0])
    readers = [Node(u) for u in urls]
    run = uuid.uuid4().hex[:8]  # keys of this run never collide with an earlier run's
    checks = Checks()

    def health():
        for node in readers:
            doc = node.get_json("/health")
            expect(doc["status"] == "ok", f"{node.url} status {doc}")
            for field in ("node_id", "role", "leader_id", "term"):
                expect(field in doc, f"{node.url} /health lacks {field}")

    def put_get_json():
        answer = writer.put_json(f"e2e:{run}:name", "Alice Smith")
        expect({"key", "seq", "index"} <= set(answer), f"answer {answer}")
        for node in readers:
            got = node.get_text(f"e2e:{run}:name")
            expect(got == "Alice Smith", f"{node.url} read {got!r}")

    def raw_binary_value():
        value = bytes(range(256)) * 4
        reply = writer.with_retry("PUT", f"/kv/{quote(f'e2e:{run}:bin')}", value)
        expect(reply.status == 200, f"PUT -> {reply.status}")
        for node in readers:
            got = node.with_retry("GET", f"/kv/{quote(f'e2e:{run}:bin')}")
            expect(got.status == 200 and got.body == value, f"{node.url} binary mismatch")
            expect(got.headers.get("x-scribe-seq") is not None, "no X-Scribe-Seq header")

    def unicode_and_slashes():
        key = f"e2e:{run}:ключ/with spaces/日本"
        reply = writer.with_retry("PUT", "/kv/" + quote(key), "значение".encode())
        expect(reply.status == 200, f"PUT -> {reply.status} {reply.text()}")
        got = readers[-1].with_retry("GET", "/kv/" + quote(key))
        expect(got.body.decode() == "значение", f"read {got.body!r}")

    def overwrite_keeps_history():
        key = f"e2e:{run}:counter"
        for i in range(3):
            writer.put_json(key, str(i))
        history = readers[-1].get_json("/history/" + quote(key))
        expect([v["value"] for v in history] == ["0", "1", "2"], f"history {history}")
        seqs = [v["seq"] for v in history]
        expect(seqs == sorted(seqs) and len(set(seqs)) == 3, f"seqs {seqs}")

    def delete_is_a_tombstone():
        key = f"e2e:{run}:gone"
        writer.put_json(key, "here")
        reply = writer.with_retry("DELETE", "/kv/" + quote(key))
        expect(reply.status == 200, f"DELETE -> {reply.status}")
        for node in readers:
            expect(node.get_text(key) is None, f"{node.url} still has {key}")
        history = readers[0].get_json("/history/" + quote(key))
        expect([v["op"] for v in history] == [1, 2], f"history ops {history}")

    def missing_key_is_404():
        reply = readers[0].request("GET", "/kv/" + quote(f"e2e:{run}:never"))
        expect(reply.status == 404 and "error" in reply.json(), f"-> {reply.status}")

    def batch_and_range():
        ops = [{"key": f"e2e:{run}:b:{i}", "value": f"v{i}"} for i in range(5)]
        ops.append({"key": f"e2e:{run}:b:0", "delete": True})
        body = json.dumps({"ops": ops}).encode()
        reply = writer.with_retry("POST", "/batch", body, {"Content-Type": "application/json"})
        expect(reply.status == 200, f"POST /batch -> {reply.status} {reply.text()}")
        items = readers[-1].get_json(f"/range?prefix={quote(f'e2e:{run}:b:')}")
        expect([i["key"] for i in items] == [f"e2e:{run}:b:{i}" for i in range(1, 5)], f"{items}")

    def records_are_dense():
        records = readers[-1].get_json("/records?start=0&limit=10000")
        expect([r["seq"] for r in records] == list(range(len(records))), "seqs not dense")
        expect(all("key_b64" in r and "value_b64" in r for r in records), "fields missing")

    def bad_input_is_400():
        reply = writer.request("PUT", "/put", b"{not json", {"Content-Type": "application/json"})
        expect(reply.status == 400, f"malformed JSON -> {reply.status}")
        reply = writer.request("PUT", "/kv/" + "k" * 5000, b"v")
        expect(reply.status == 400, f"oversize key -> {reply.status}")

    def inclusion_proof_verifies():
        key = f"e2e:{run}:proved"
        writer.put_json(key, "provable")
        for node in readers:
            doc = node.get_json("/verify/" + quote(key))
            leaf = leaf_hash(
                encode_leaf_data(
                    doc["seq"],
                    doc["ts_ms"],
                    doc["op"],
                    base64.b64decode(doc["key_b64"]),
                    base64.b64decode(doc["value_b64"]),
                )
            )
            expect(leaf.hex() == doc["leaf_hash"], "leaf hash does not match the record")
            path = [bytes.fromhex(h) for h in doc["audit_path"]]
            ok = verify_inclusion_path(
                leaf, doc["seq"], doc["tree_size"], path, bytes.fromhex(doc["root"])
            )
            expect(ok, f"{node.url}: the inclusion proof does not verify")

    def tree_head_is_signed():
        head = readers[0].get_json("/tree/head")
        for field in ("tree_size", "root", "ts_ms", "signature", "public_key"):
            expect(field in head, f"/tree/head lacks {field}")

    def metrics_exposed():
        reply = readers[0].request("GET", "/metrics")
        expect(reply.status == 200 and b"# TYPE" in reply.body, "not Prometheus text")

    for name, fn in (
        ("health of every node", health),
        ("PUT /put then GET /get from every node", put_get_json),
        ("raw binary value round trip", raw_binary_value),
        ("unicode key with slashes", unicode_and_slashes),
        ("overwrite keeps history", overwrite_keeps_history),
        ("delete is a tombstone", delete_is_a_tombstone),
        ("missing key is 404 JSON", missing_key_is_404),
        ("atomic batch and range", batch_and_range),
        ("records are dense", records_are_dense),
        ("bad input is 400", bad_input_is_400),
        ("inclusion proof verifies", inclusion_proof_verifies),
        ("signed tree head", tree_head_is_signed),
        ("metrics", metrics_exposed),
    ):
        checks.run(name, fn)
    for node in readers + [writer]:
        node.close()
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
