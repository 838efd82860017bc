"""Around the console: security headers on every answer, and no page that loads scripts from elsewhere by default."""

from __future__ import annotations

import pytest

from tests.readside import ReadClient, api_settings, bearer
from worker.api.security_headers import NOTHING


@pytest.fixture(scope="module")
def api(store_url, broker_url):
    client = ReadClient(api_settings(store_url, "api_headers", broker_url))
    yield client
    client.close()


def test_every_answer_carries_the_security_headers(api):
    http = api.http
    answers = {
        "list": api.post("list", {"query": {}}),
        "unauthenticated": api.post("list", {}, token="nope"),
        "invalid": api.post("list", {"query": {"page": "x"}}),
        "too large": api.post("list", b"{" + b" " * 1_100_000 + b"}"),
        "unknown path": http.get("/no/such/path"),
        "openapi": http.get("/openapi.json"),
        "scope": http.get("/cost-analysis/v1/auth/scope", headers=bearer("token-a")),
    }
    assert [answers[name].status_code for name in answers] == [200, 401, 400, 413, 404, 200, 200]
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert answer.headers["referrer-policy"] == "no-referrer", name
        assert answer.headers["content-security-policy"] == NOTHING, name
    page = http.get("/console")
    assert page.status_code == 200 and page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]  # the console's own, kept
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_documentation_pages_are_off_unless_asked_for(api, store_url, broker_url):
    for path in ("/docs", "/redoc"):
        assert api.http.get(path).status_code == 404
    assert api.http.get("/openapi.json").json()["paths"]
    with_docs = ReadClient(api_settings(store_url, "api_headers", broker_url, api_docs=True))
    try:
        docs = with_docs.http.get("/docs")
        assert docs.status_code == 200 and "cdn.jsdelivr.net" in docs.text
        policy = docs.headers["content-security-policy"]
        # The pages' scripts come from one CDN, named; nothing else from outside, no framing.
        assert "script-src https://cdn.jsdelivr.net 'unsafe-inline'" in policy
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        assert with_docs.http.get("/redoc").status_code == 200
    finally:
        with_docs.close()
