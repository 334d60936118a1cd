"""The WSGI fast path of PUT/GET /kv/<key> answers exactly as the Flask views do, or hands over."""

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from scribe import Ledger
from scribe.errors import NoLeaderError, OutcomeUnknownError
from scribe.http import LedgerBackend, create_app
from scribe.http.fastkv import FastKv

TOKEN = "s3cret"


class FaultyBackend(LedgerBackend):
    """Puts and linearizable gets raise `fault` when it is set (a cluster without a leader...)."""

    fault: Exception | None = None

    def put(self, key, value):
        if self.fault is not None:
            raise self.fault
        return super().put(key, value)

    def get(self, key, consistency="linearizable"):
        if self.fault is not None:
            raise self.fault
        return super().get(key, consistency)


class Twin:
    """Two apps over two identical ledgers: one served through the fast path, one by Flask only."""

    def __init__(self, tmp_path, **app_args):
        self.ledgers = [Ledger(str(tmp_path / name), flush_every_ms=1000) for name in "ab"]
        self.backends = [FaultyBackend(led, node_id=1, client_port=8080) for led in self.ledgers]
        self.apps = [create_app(b, max_value_bytes=64, **app_args) for b in self.backends]
        self.flask_calls = 0
        fast = self.apps[0].wsgi_app
        flask_wsgi = fast.wrapped

        def spy(environ, start_response):
            self.flask_calls += 1
            return flask_wsgi(environ, start_response)

        fast.wrapped = spy

    def call(self, i, method, path, path_info=None, **kwargs):
        app = self.apps[i]
        wsgi = app.wsgi_app if i == 0 else app.wsgi_app.wrapped
        environ = EnvironBuilder(path=path, method=method, **kwargs).get_environ()
        if path_info is not None:  # as a real server hands it over: percent-decoded, Latin-1
            environ["PATH_INFO"], _, environ["QUERY_STRING"] = path_info.partition("?")
        body, status, headers = run_wsgi_app(wsgi, environ)
        return status, sorted(headers.items()), b"".join(body)

    def both(self, method, path, **kwargs):
        """(answer, whether the fast path answered it); both apps must answer alike."""
        before = self.flask_calls
        fast = self.call(0, method, path, **kwargs)
        flask = self.call(1, method, path, **kwargs)
        assert fast == flask
        return fast, self.flask_calls == before

    def close(self):
        for led in self.ledgers:
            led.close()


@pytest.fixture
def twin(tmp_path):
    t = Twin(tmp_path)
    yield t
    t.close()


@pytest.mark.parametrize("path", ["/kv/a", "/kv/%C3%A9t%C3%A9", "/kv/a%2Fb", "/kv/a/", "/kv/%20x"])
def test_plain_put_and_get_are_answered_alike_by_the_fast_path(twin, path):
    (status, _headers, body), fast = twin.both("PUT", path, data=b"value")
    assert (status, fast) == ("200 OK", True)
    assert body.startswith(b'{"key":')
    (status, headers, body), fast = twin.both("GET", path)
    assert (status, body, fast) == ("200 OK", b"value", True)
    assert ("X-Scribe-Seq", "0") in headers


def test_missing_key_is_the_same_404(twin):
    (status, _headers, body), fast = twin.both("GET", "/kv/nothing-here")
    assert (status, fast) == ("404 NOT FOUND", True)
    assert b'"key_not_found"' in body


@pytest.mark.parametrize(
    "method, path, data",
    [
        ("GET", "/kv/a?consistency=stale", None),
        ("HEAD", "/kv/a", None),
        ("DELETE", "/kv/a", None),
        ("PUT", "/kv/" + "k" * 5000, b"v"),  # key over the limit: 400
        ("PUT", "/kv/\xff", b"v"),  # not UTF-8 once percent-decoded: 400
        ("PUT", "/kv//a", b"v"),  # a leading slash routes elsewhere
        ("PUT", "/kv/a\nb", b"v"),  # Werkzeug's router does not match a newline
        ("PUT", "/kv/a", b"v" * 65),  # over max_value_bytes: 413
        ("PUT", "/put", b'{"key": "a", "value": "v"}'),
    ],
)
def test_other_requests_go_to_flask(twin, method, path, data):
    twin.both("PUT", "/kv/a", data=b"first")
    _answer, fast = twin.both(method, "/kv/x", path_info=path, data=data)
    assert not fast


@pytest.mark.parametrize(
    "fault, status",
    [
        (NoLeaderError("no leader"), "503 SERVICE UNAVAILABLE"),
        (OutcomeUnknownError("?"), "504 GATEWAY TIMEOUT"),
    ],
)
def test_backend_errors_are_answered_by_the_app_handlers(twin, fault, status):
    for backend in twin.backends:
        backend.fault = fault
    (got, headers, _body), fast = twin.both("PUT", "/kv/a", data=b"v")
    assert (got, fast) == (status, True)
    if status.startswith("503"):
        assert ("Retry-After", "1") in headers
    (got, _headers, _body), fast = twin.both("GET", "/kv/a")
    assert (got, fast) == (status, True)


def test_token_is_checked_and_a_bad_one_goes_to_flask(tmp_path):
    twin = Twin(tmp_path, api_token=TOKEN)
    try:
        good = {"Authorization": f"Bearer {TOKEN}"}
        (status, _h, _b), fast = twin.both("PUT", "/kv/a", data=b"v", headers=good)
        assert (status, fast) == ("200 OK", True)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            (status, _h, _b), fast = twin.both("PUT", "/kv/a", data=b"v", headers=headers)
            assert (status, fast) == ("401 UNAUTHORIZED", False)
    finally:
        twin.close()


def test_metrics_count_fast_requests_under_the_kv_route(twin):
    twin.both("PUT", "/kv/a", data=b"v")
    twin.both("GET", "/kv/a")
    twin.both("GET", "/kv/b")
    _status, _headers, text = twin.call(0, "GET", "/metrics")
    text = text.decode()
    for line in (
        'scribe_http_requests_total{method="PUT",route="/kv/<path:key>",status="200"} 1.0',
        'scribe_http_requests_total{method="GET",route="/kv/<path:key>",status="200"} 1.0',
        'scribe_http_requests_total{method="GET",route="/kv/<path:key>",status="404"} 1.0',
        'scribe_http_request_duration_seconds_count{method="GET",route="/kv/<path:key>"} 2.0',
        "scribe_http_requests_in_flight 1.0",  # the scrape itself
    ):
        assert line in text


def test_a_hook_added_later_turns_the_fast_path_off(twin):
    seen = []
    twin.apps[0].before_request(lambda: seen.append(1))
    _answer = twin.call(0, "PUT", "/kv/a", data=b"v")
    assert seen == [1]
    assert isinstance(twin.apps[0].wsgi_app, FastKv)
