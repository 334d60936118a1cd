"""Fixtures of the HTTP API tests: an app over a real scribe.Ledger in tmp_path."""

import pytest

from scribe import Ledger
from scribe.http import LedgerBackend, create_app


class FaultyBackend(LedgerBackend):
    """A LedgerBackend whose writes and reads raise `fault` when it is set (cluster failures)."""

    fault: Exception | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.barriers: list[str] = []  # consistency of every read_barrier() call

    def _raise(self):
        if self.fault is not None:
            raise self.fault

    def put(self, key, value):
        self._raise()
        return super().put(key, value)

    def delete(self, key):
        self._raise()
        return super().delete(key)

    def batch(self, ops):
        self._raise()
        return super().batch(ops)

    def get(self, key, consistency="linearizable"):
        if consistency == "linearizable":
            self._raise()
        return super().get(key, consistency)

    def read_barrier(self, consistency="linearizable"):
        super().read_barrier(consistency)
        self.barriers.append(consistency)
        if consistency == "linearizable":
            self._raise()


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(str(tmp_path / "ledger"), flush_every_ms=1000)
    yield led
    led.close()


@pytest.fixture
def backend(ledger):
    return FaultyBackend(ledger, node_id=1, client_port=8080)


@pytest.fixture
def app(backend):
    return create_app(backend, max_value_bytes=1024)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(backend):
    def make(**kwargs):
        kwargs.setdefault("max_value_bytes", 1024)
        return create_app(backend, **kwargs).test_client()

    return make
