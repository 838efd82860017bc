"""Limits before work: bodies capped before they are read, watch streams counted, guessing slowed.

The API runs under uvicorn on a free port (tests/browser.py's ``serving``)
where the wire matters: a body announced too large is refused before a byte
of it is sent, a chunked one as soon as it passes the cap. Streams and
failed authentications are counted by the real app.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from tests.browser import serving
from tests.harness import wait_for
from tests.readside import ReadClient, api_settings, bearer, secret
from worker.api import create_app
from worker.api.auth_throttle import AuthThrottle
from worker.api.body_limit import MAX_BODY_BYTES

LIST_PATH = "/cost-analysis/v1/job-task/list"


@pytest.fixture(scope="module")
def server(store_url, broker_url):
    settings = api_settings(store_url, "api_limits", broker_url, watch_streams_per_token=2, watch_streams=3)
    with serving(create_app(settings)) as served:
        yield served


def exchange(port: int, head: str, body_parts=()) -> tuple[int, dict[str, str], bytes]:
    """Send a request's head (and parts of its body) on a socket of its own; the answer's status, headers, body.

    The socket waits 20 s for the answer: an API that waits for the rest of the body never answers.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(head.encode())
        for part in body_parts:
            connection.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head_text, _, body = answer.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def head(server, extra: str) -> str:
    token = secret("token-a")
    return (f"POST {LIST_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\n{extra}\r\n")


def test_a_body_announced_too_large_is_refused_before_it_is_sent(server):
    status, headers, body = exchange(server.port, head(server, "Content-Length: 200000000\r\n"))
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["detail"]["code"] == "ERROR_REQUEST_TOO_LARGE"


def test_a_chunked_body_is_refused_once_it_passes_the_cap_without_its_end(server):
    chunk = b"x" * 65536
    # Just past the cap, and never the last chunk: an API that waits for the end never answers.
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY_BYTES // len(chunk) + 1)
    status, headers, body = exchange(server.port, head(server, "Transfer-Encoding: chunked\r\n"), parts)
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body)["detail"]["code"] == "ERROR_REQUEST_TOO_LARGE"
    # A body within the cap, chunked or not, is read as always.
    small = b'{"query": {"count_only": true}}'
    status, _, _ = exchange(server.port, head(server, "Transfer-Encoding: chunked\r\n"),
                            [b"%x\r\n%s\r\n0\r\n\r\n" % (len(small), small)])
    assert status == 200


def test_watch_streams_are_capped_per_token_and_in_all(server):
    url = f"{server.url}/cost-analysis/v1/job-task/watch"
    slots = server.server.config.app.state.watch_slots
    with httpx.Client(timeout=30) as client:
        opened = []

        def open_stream(token):
            context = client.stream("GET", url, headers=bearer(token))
            response = context.__enter__()
            if response.status_code == 200:
                opened.append(context)
            else:
                response.read()
                context.__exit__(None, None, None)
            return response

        try:
            assert [open_stream("token-a").status_code for _ in range(2)] == [200, 200]
            third = open_stream("token-a")
            assert third.status_code == 429 and third.headers["retry-after"] == "5"
            assert "JOBTASK_WATCH_STREAMS_PER_TOKEN" in third.json()["detail"]["message"]
            assert open_stream("token-b").status_code == 200  # a token of its own: 3 streams in all
            fourth = open_stream("token-seed")
            assert fourth.status_code == 429 and "JOBTASK_WATCH_STREAMS" in fourth.json()["detail"]["message"]
            opened.pop(0).__exit__(None, None, None)  # a stream that ends gives its slot back
            wait_for(lambda: slots.in_progress(secret("token-a")) == 1, timeout=30)
            assert open_stream("token-a").status_code == 200
        finally:
            for context in opened:
                context.__exit__(None, None, None)
    wait_for(lambda: slots.in_progress() == 0, timeout=30)


def test_failed_authentications_are_slowed_per_address(store_url, broker_url):
    api = ReadClient(api_settings(store_url, "auth_limits", broker_url, api_auth_failures=3,
                                  api_auth_failures_per_minute=1))
    try:
        assert [api.post("list", {}, token=f"guess-{n}").status_code for n in range(3)] == [401, 401, 401]
        slowed = api.post("list", {}, token="guess-3")
        assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
        assert slowed.json()["detail"]["code"] == "ERROR_TOO_MANY_REQUESTS"
        # Refused before the token is compared: a guess that would be right learns nothing either.
        assert api.post("list", {}, token="token-a").status_code == 429
    finally:
        api.close()


def test_the_throttle_refills_and_forgets_the_oldest_addresses(monkeypatch):
    now = [0.0]
    throttle = AuthThrottle(burst=2, per_minute=60, clock=lambda: now[0])
    throttle.failed("10.0.0.1")
    throttle.failed("10.0.0.1")
    with pytest.raises(Exception, match="too many failed authentications"):
        throttle.check("10.0.0.1")
    throttle.check("10.0.0.2")  # another address has its own bucket
    now[0] = 1.0  # one failure earned back a second
    throttle.check("10.0.0.1")
    monkeypatch.setattr("worker.api.auth_throttle.MAX_ADDRESSES", 100)
    for n in range(150):
        throttle.failed(f"10.1.0.{n}")
    assert len(throttle._buckets) == 100 and "10.0.0.1" not in throttle._buckets
