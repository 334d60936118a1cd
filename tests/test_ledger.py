"""The embedded ledger: the seed's unit and integration list, limits, errors, concurrency."""

import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import scribe
from scribe import (
    ClosedError,
    InvalidArgumentError,
    KeyNotFoundError,
    Ledger,
    LockedError,
    ScribeError,
    SimpleScribeLedger,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def led(tmp_path):
    ledger = Ledger(str(tmp_path / "data"))
    yield ledger
    ledger.close()


def test_alias_and_error_hierarchy():
    assert SimpleScribeLedger is Ledger
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(InvalidArgumentError, ScribeError)
    assert issubclass(ClosedError, ScribeError)


def test_basic_put_get(led):
    assert led.put("name", "Simple Scribe Ledger") == 0
    assert led.put(b"version", b"0.1.0") == 1
    assert led.get("name") == b"Simple Scribe Ledger"
    assert led.get(b"version") == b"0.1.0"
    assert led.get("nonexistent") is None
    assert len(led) == 2 and not led.is_empty()


def test_bytes_like_keys_and_values(led):
    led.put(bytearray(b"k"), memoryview(b"v"))
    assert led.get(memoryview(b"k")) == b"v"


def test_multiple_operations_and_batch(led):
    for i in range(100):
        led.put(f"key{i}", f"value{i}")
    last = led.apply_batch([(f"b{i}", f"v{i}") for i in range(50)] + [("key0", None)])
    assert last == 150
    assert led.get("key0") is None and led.get("b49") == b"v49"
    assert len(led) == 149


def test_put_to_existing_key_makes_new_version(led):
    led.put("k", "one")
    led.put("k", "two")
    assert led.get("k") == b"two"
    assert [v.value for v in led.history("k")] == [b"one", b"two"]
    assert len(led) == 1
    assert len(list(led.records())) == 2


def test_clear(led):
    for i in range(1000):
        led.put(f"key{i}", f"value{i}")
    assert len(led) == 1000
    led.clear()
    assert len(led) == 0 and led.is_empty()
    assert led.get("key5") is None
    assert led.history("key5")[-1].op == scribe.OP_CLEAR
    assert led.tree_head().size == 1001


def test_persistence_across_reopen(tmp_path):
    path = str(tmp_path / "d")
    with Ledger(path) as led:
        led.put("a", "1")
        led.apply_batch([("b", "2"), ("c", "3")])
        led.delete("a")
        head = led.tree_head()
    with Ledger(path) as led:
        assert led.get("a") is None and led.get("c") == b"3"
        assert len(led) == 2
        assert led.tree_head() == head
        led.put("d", "4")
        assert led.put("e", "5") == 5


def test_survives_sigkill_after_flush(tmp_path):
    path = str(tmp_path / "d")
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        from scribe import Ledger
        led = Ledger({path!r}, flush_every_ms=60000)
        for i in range(2000):
            led.put(f"k{{i}}", f"v{{i}}")
        led.apply_batch([(f"b{{i}}", "x" * 100) for i in range(500)])
        led.flush()
        for i in range(100):
            led.put(f"unflushed{{i}}", "y")
        print("flushed", flush=True)
        import time
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"flushed"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with Ledger(path) as led:
        assert led.get("k1999") == b"v1999"
        assert led.get("b499") == b"x" * 100
        assert len(led) >= 2500
        assert led.tree_head().size >= 2500


def test_binary_and_unicode(led):
    blob = bytes(range(256))
    led.put("binary_key", blob)
    led.put(blob, b"\x00")
    led.put("ключ-🔑", "значение ✓")
    assert led.get("binary_key") == blob
    assert led.get(blob) == b"\x00"
    assert led.get("ключ-🔑").decode() == "значение ✓"


def test_large_keys_and_values_and_limits(tmp_path):
    with Ledger(str(tmp_path / "d"), max_value_bytes=1 << 20) as led:
        led.put("k" * 4096, "v")
        assert led.get("k" * 4096) == b"v"
        big = os.urandom(1 << 20)
        led.put("big", big)
        assert led.get("big") == big
        with pytest.raises(ValueError):
            led.put("k" * 4097, "v")
        with pytest.raises(InvalidArgumentError):
            led.put("big2", b"x" * ((1 << 20) + 1))
        with pytest.raises(InvalidArgumentError):
            led.apply_batch([("ok", "1"), ("bad", b"x" * ((1 << 20) + 1))])
        assert led.get("ok") is None  # nothing of a rejected batch is applied


def test_empty_key_rejected_empty_value_accepted(led):
    with pytest.raises(InvalidArgumentError):
        led.put("", "x")
    with pytest.raises(InvalidArgumentError):
        led.get(b"")
    led.put("empty", "")
    assert led.get("empty") == b""
    assert "empty" in led


@pytest.mark.parametrize("bad", [None, 5, 1.5, ["a"], {"a": 1}, object()])
def test_wrong_types_rejected(led, bad):
    with pytest.raises(InvalidArgumentError):
        led.put(bad, "v")
    if bad is not None:
        with pytest.raises(InvalidArgumentError):
            led.put("k", bad)
    with pytest.raises(InvalidArgumentError):
        led.get(bad)


def test_bad_batches_rejected(led):
    with pytest.raises(InvalidArgumentError):
        led.apply_batch([("a",)])
    with pytest.raises(InvalidArgumentError):
        led.apply_batch("ab")
    with pytest.raises(InvalidArgumentError):
        led.apply_batch([("", "x")])
    assert led.apply_batch([]) == -1
    assert len(list(led.records())) == 0


def test_bad_tuning_rejected(tmp_path):
    with pytest.raises(InvalidArgumentError):
        Ledger(str(tmp_path / "a"), flush_every_ms=-1)
    with pytest.raises(InvalidArgumentError):
        Ledger(str(tmp_path / "b"), segment_size=10)
    with pytest.raises(TypeError):
        Ledger(str(tmp_path / "c"), 1024)  # tuning is keyword-only


def test_concurrent_threads(led):
    errors = []

    def writer(t):
        try:
            for i in range(500):
                led.put(f"t{t}:k{i}", f"{t}:{i}")
                assert led.get(f"t{t}:k{i}") == f"{t}:{i}".encode()
                if i % 100 == 0:
                    led.apply_batch([(f"t{t}:b{i}", "x"), (f"t{t}:b{i + 1}", "y")])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    def flusher():
        for _ in range(20):
            led.flush()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    threads.append(threading.Thread(target=flusher))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(led) == 8 * 500 + 8 * 10
    seqs = [r.seq for r in led.records()]
    assert seqs == list(range(len(seqs)))


def test_stress_100k_ops(tmp_path):
    path = str(tmp_path / "d")
    with Ledger(path, segment_size=1 << 20) as led:
        for start in range(0, 100_000, 10_000):
            led.apply_batch([(f"s{i:06d}", f"v{i}") for i in range(start, start + 10_000)])
        for i in range(0, 100_000, 7):
            assert led.get(f"s{i:06d}") == f"v{i}".encode()
        head = led.tree_head()
    with Ledger(path) as led:
        assert len(led) == 100_000
        assert led.tree_head() == head
        assert led.get("s099999") == b"v99999"


def test_hierarchical_and_timestamp_keys_with_scan(led):
    for user in ("alice", "bob"):
        for item in ("profile", "settings", "posts/1", "posts/2"):
            led.put(f"users/{user}/{item}", f"{user}-{item}")
    for ts in ("2024-01-01T00:00:00", "2024-01-01T12:00:00", "2024-01-02T00:00:00"):
        led.put(f"events/{ts}", ts)
    assert [k for k, _ in led.scan(prefix="users/alice/")] == [
        b"users/alice/posts/1",
        b"users/alice/posts/2",
        b"users/alice/profile",
        b"users/alice/settings",
    ]
    day1 = list(led.scan(start="events/2024-01-01", end="events/2024-01-02"))
    assert [v for _, v in day1] == [b"2024-01-01T00:00:00", b"2024-01-01T12:00:00"]
    assert [k for k, _ in led.scan(start="users/bob/")][0] == b"users/bob/posts/1"


def test_closed_ledger_raises(tmp_path):
    led = Ledger(str(tmp_path / "d"))
    led.put("a", "1")
    led.close()
    led.close()  # idempotent
    for call in (
        lambda: led.put("a", "2"),
        lambda: led.get("a"),
        lambda: led.get("zzz"),
        lambda: len(led),
        lambda: list(led.scan()),
        lambda: led.flush(),
        lambda: led.tree_head(),
        lambda: led.history("a"),
    ):
        with pytest.raises(ClosedError):
            call()


def test_second_process_gets_clear_lock_error(tmp_path):
    path = str(tmp_path / "d")
    with Ledger(path):
        code = (
            f"import sys; sys.path.insert(0, {ROOT!r})\nfrom scribe import Ledger\nLedger({path!r})"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode != 0
        assert "LockedError" in out.stderr and "another process" in out.stderr
        with pytest.raises(LockedError):
            Ledger(path)  # the same process, a second handle: also refused


def test_temp_is_removed_on_close():
    led = Ledger.temp()
    path = led.path
    led.put("a", "b")
    assert os.path.isdir(path)
    led.close()
    assert not os.path.exists(path)


def test_flush_every_ms_zero_syncs_each_write(tmp_path):
    with Ledger(str(tmp_path / "d"), flush_every_ms=0) as led:
        led.put("a", "1")
        assert led._engine._wbuf == bytearray()


def test_proofs_verify_and_older_versions(led):
    led.put("k", "v1")
    for i in range(20):
        led.put(f"other{i}", "x")
    led.put("k", "v2")
    head = led.tree_head()
    proof = led.prove("k")
    assert proof.value == b"v2" and scribe.verify_inclusion(proof, head)
    old = led.prove("k", seq=led.history("k")[0].seq)
    assert old.value == b"v1" and scribe.verify_inclusion(old, head)
    with pytest.raises(KeyNotFoundError):
        led.prove("never")
    with pytest.raises(KeyNotFoundError):
        led.prove("k", seq=3)
    first = led.tree_head()
    led.put("later", "x")
    second = led.tree_head()
    proof = led.consistency(first.size, second.size)
    assert scribe.verify_consistency(first.size, second.size, first.root, second.root, proof)
    with pytest.raises(InvalidArgumentError):
        led.consistency(5, 2)


def test_subclass_overrides_of_put_and_get_are_honoured(tmp_path):
    calls = []

    class Spy(Ledger):
        def put(self, key, value):
            calls.append("put")
            return super().put(key, value)

        def get(self, key):
            calls.append("get")
            return super().get(key)

    with Spy(str(tmp_path / "d")) as led:
        led.put("k", "v")
        assert led.get("k") == b"v"
    assert calls == ["put", "get"]
