"""An error nobody foresaw: one logged 500 with a reference, and the connection goes on serving.

Issue 17 saw an unexpected exception answer ``500 ERROR_UNKNOWN``, log two
tracebacks (the API's, then the server's) and reset the next request on the
same keep-alive connection. The API under uvicorn, a store read made to
raise, one client connection: the next request on it is answered.
"""

from __future__ import annotations

import logging

import httpx

from tests.browser import serving
from tests.readside import api_settings, bearer
from worker.api import create_app
from worker.store import reads


def test_an_unexpected_error_is_one_logged_500_and_the_connection_goes_on(store_url, broker_url, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr(reads, "find_page", broken)
    with serving(create_app(api_settings(store_url, "api_errors", broker_url))) as server, \
            httpx.Client(base_url=server.url, headers=bearer("token-a"), timeout=30) as client, \
            caplog.at_level(logging.ERROR):
        failed = client.post("/cost-analysis/v1/job-task/list", json={"query": {}})
        assert failed.status_code == 500
        detail = failed.json()["detail"]
        assert detail["code"] == "ERROR_UNKNOWN" and "reference = " in detail["message"]
        assert "a defect" not in failed.text and failed.headers["x-content-type-options"] == "nosniff"
        again = client.post("/cost-analysis/v1/job-task/list", json={"query": {"count_only": True}})
        assert again.status_code == 200 and again.json() == {"results": [], "total_count": 0}
    reference = detail["message"].rsplit("= ", 1)[1].rstrip(")")
    logged = [record for record in caplog.records if record.exc_info]
    assert len(logged) == 1 and reference in logged[0].getMessage(), [r.getMessage() for r in logged]
