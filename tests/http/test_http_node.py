"""The node routes: /health, /cluster/*, /metrics, /openapi.json."""

import re

from prometheus_client.parser import text_string_to_metric_families

from scribe.http import create_app


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.get_json() == {
        "status": "ok",
        "node_id": 1,
        "role": "leader",
        "leader_id": 1,
        "term": 1,
    }


def test_cluster_routes(client):
    members = client.get("/cluster/members").get_json()["members"]
    assert members == [
        {
            "id": 1,
            "host": "127.0.0.1",
            "client_port": 8080,
            "raft_port": None,
            "role": "leader",
            "url": "http://127.0.0.1:8080",
            "public_key": client.get("/tree/head").get_json()["public_key"],
        }
    ]
    leader = client.get("/cluster/leader").get_json()
    assert leader == {
        "leader_id": 1,
        "term": 1,
        "host": "127.0.0.1",
        "client_port": 8080,
        "url": "http://127.0.0.1:8080",
    }
    client.put("/kv/a", data=b"1")
    client.post("/batch", json={"ops": [{"key": "b", "value": "2"}, {"key": "a", "delete": True}]})
    status = client.get("/cluster/status").get_json()
    assert status["node_id"] == 1 and status["role"] == "leader" and status["leader_id"] == 1
    assert status["records"] == 3 and status["keys"] == 1
    assert status["commit_index"] == status["applied_index"] == 3


def metrics_of(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_are_parseable_and_count_requests(client):
    client.put("/kv/a", data=b"1")
    client.put("/kv/b", data=b"2")
    client.get("/kv/a")
    client.get("/nothing/here")
    samples = metrics_of(client)
    route_put = (("method", "PUT"), ("route", "/kv/<path:key>"), ("status", "200"))
    assert samples[("scribe_http_requests_total", route_put)] == 2
    get_404 = (("method", "GET"), ("route", "/<path:key>"), ("status", "404"))
    assert samples[("scribe_http_requests_total", get_404)] == 1
    count = samples[("scribe_http_request_duration_seconds_count", route_put[:2])]
    assert count == 2
    assert samples[("scribe_ledger_records", ())] == 2
    assert samples[("scribe_ledger_keys", ())] == 2
    assert samples[("scribe_ledger_written_records_total", ())] == 2
    assert samples[("scribe_ledger_flush_seconds_count", ())] >= 1
    assert samples[("scribe_http_requests_in_flight", ())] == 1  # the /metrics request itself


def test_unmatched_requests_share_one_route_label(client):
    for i in range(5):
        client.post(f"/cluster/x{i}")
    labels = {
        labels for (name, labels) in metrics_of(client) if name == "scribe_http_requests_total"
    }
    routes = {dict(label)["route"] for label in labels}
    assert "unmatched" in routes and not any("x1" in route for route in routes)


def test_two_apps_in_one_process_have_separate_registries(backend):
    a = create_app(backend).test_client()
    b = create_app(backend).test_client()
    a.get("/health")
    a.get("/health")
    key = (
        "scribe_http_requests_total",
        (("method", "GET"), ("route", "/health"), ("status", "200")),
    )
    assert metrics_of(a)[key] == 2
    assert metrics_of(b).get(key) is None


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_openapi_describes_every_route(client, app):
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    described = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete")
    }
    served = {
        (openapi_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == described


def refs_in(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def test_openapi_references_resolve(client):
    doc = client.get("/openapi.json").get_json()
    refs = set(refs_in(doc))
    assert refs and {ref.rsplit("/", 1)[1] for ref in refs} <= set(doc["components"]["schemas"])
    assert all(ref.startswith("#/components/schemas/") for ref in refs)


def test_openapi_names_the_bearer_token_when_set(make_client):
    doc = make_client(api_token="t").get("/openapi.json").get_json()
    assert doc["paths"]["/kv/{key}"]["put"]["security"] == [{"bearer": []}]
    assert "401" in doc["paths"]["/batch"]["post"]["responses"]
