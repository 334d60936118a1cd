"""PUT (batched + flush), GET and MIXED at 1 to 10,000 operations, and 10,000-op throughput.

Every PUT and MIXED round runs on a fresh temporary ledger (created in setup, untimed) and ends
with flush(), an fsync, inside the timed region, as in the seed's criterion benches.
"""

from __future__ import annotations

import pytest

from scribe import Ledger

SIZES = (1, 10, 100, 1_000, 5_000, 10_000)
THROUGHPUT_OPS = 10_000


def make_data(n: int) -> tuple[list[bytes], list[bytes]]:
    """The seed's pre-generated keys and values, encoded before timing."""
    return [f"key{i}".encode() for i in range(n)], [f"value{i}".encode() for i in range(n)]


def rounds_for(n: int) -> int:
    """Enough rounds for stable statistics on small sizes without minutes on large ones."""
    return max(10, min(100, 50_000 // n))


@pytest.fixture
def fresh_ledgers():
    """A factory of fresh temporary ledgers; any the benchmark left open are closed afterwards."""
    made: list[Ledger] = []

    def make() -> Ledger:
        led = Ledger.temp()
        made.append(led)
        return led

    yield make
    for led in made:
        led.close()


@pytest.fixture(scope="module")
def filled_ledger():
    """One ledger holding THROUGHPUT_OPS keys, shared by the read benchmarks."""
    keys, values = make_data(THROUGHPUT_OPS)
    led = Ledger.temp()
    led.apply_batch(list(zip(keys, values, strict=True)))
    led.flush()
    yield led, keys, values
    led.close()


def put_batch(led, items):
    led.apply_batch(items)
    led.flush()


def get_all(led, keys):
    get = led.get
    for k in keys:
        get(k)


def mixed(led, keys, values):
    """n operations: puts at even positions, gets of the key just put at odd ones; then flush."""
    put, get = led.put, led.get
    for i in range(len(keys)):
        if i & 1:
            get(keys[i - 1])
        else:
            put(keys[i], values[i])
    led.flush()


def _check_values(led, keys, values):
    for k, v in zip(keys, values, strict=True):
        if led.get(k) != v:
            raise AssertionError(f"key {k!r} did not read back its value")


@pytest.mark.parametrize("n", SIZES)
def test_put(benchmark, fresh_ledgers, n):
    keys, values = make_data(n)
    items = list(zip(keys, values, strict=True))
    benchmark.group = "put (apply_batch + flush)"
    benchmark.extra_info["ops"] = n
    benchmark.pedantic(
        put_batch,
        setup=lambda: ((fresh_ledgers(), items), {}),
        teardown=lambda led, _items: led.close(),
        rounds=rounds_for(n),
    )
    led = fresh_ledgers()
    put_batch(led, items)
    _check_values(led, keys, values)


@pytest.mark.parametrize("n", SIZES)
def test_get(benchmark, filled_ledger, n):
    led, keys, values = filled_ledger
    benchmark.group = "get"
    benchmark.extra_info["ops"] = n
    benchmark(get_all, led, keys[:n])
    _check_values(led, keys[:n], values[:n])


@pytest.mark.parametrize("n", SIZES)
def test_mixed(benchmark, fresh_ledgers, n):
    keys, values = make_data(n)
    benchmark.group = "mixed (alternating put/get + flush)"
    benchmark.extra_info["ops"] = n
    benchmark.pedantic(
        mixed,
        setup=lambda: ((fresh_ledgers(), keys, values), {}),
        teardown=lambda led, _keys, _values: led.close(),
        rounds=rounds_for(n),
    )
    led = fresh_ledgers()
    mixed(led, keys, values)
    _check_values(led, keys[::2], values[::2])


def _record_throughput(benchmark, ops):
    if benchmark.stats is not None:
        mean_s = benchmark.stats.stats.mean
        benchmark.extra_info["elements_per_sec"] = round(ops / mean_s) if mean_s else None


def test_throughput_put_10000(benchmark, fresh_ledgers):
    keys, values = make_data(THROUGHPUT_OPS)
    items = list(zip(keys, values, strict=True))
    benchmark.group = "throughput (10,000 ops)"
    benchmark.extra_info["ops"] = THROUGHPUT_OPS
    benchmark.pedantic(
        put_batch,
        setup=lambda: ((fresh_ledgers(), items), {}),
        teardown=lambda led, _items: led.close(),
        rounds=rounds_for(THROUGHPUT_OPS),
    )
    _record_throughput(benchmark, THROUGHPUT_OPS)


def test_throughput_get_10000(benchmark, filled_ledger):
    led, keys, _values = filled_ledger
    benchmark.group = "throughput (10,000 ops)"
    benchmark.extra_info["ops"] = THROUGHPUT_OPS
    benchmark(get_all, led, keys)
    _record_throughput(benchmark, THROUGHPUT_OPS)
