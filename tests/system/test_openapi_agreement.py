"""/openapi.json and the validators are one source: a schema fuzzer finds no disagreement.

Schemathesis reads the document of the real app (``worker.api.create_app``)
and sends, per operation, requests the document allows (positive data: each
must not be refused with a 400) and requests it forbids (negative data: each
must be refused), with every check it has (status codes, response schemas,
content types, auth...), to an app on a real store with worker-built tasks.
The token may read and cancel. The change stream (``job-task/watch``, an
endless response) and the console (HTML) are left out.

Answers that depend on the state of the data rather than on the request's
shape are no disagreement: a Job already ended cannot be canceled
(``ERROR_JOB_STATE``, a 400 as SpaceONE gives it), and the store may refuse
to run a well-formed pipeline on the values it holds (``$year`` of a text).
A few rules of an aggregate depend on what the stages before produced; JSON
Schema cannot say those. ``tolerated`` names each, narrowly, by code and
message; nothing else may refuse a request the document allows.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.harness import Pipeline
from tests.readside import TOKENS, api_settings, bearer, drive, seed_specs
from worker.api import create_app
from worker.contract.errors import CodedError
from worker.read.query import Scope, plan_list
from worker.read.resource import JOB, JOB_TASK
from worker.read.stat_query import plan_stat
from worker.settings import load_settings

TOKEN = "token-read-cancel"
HEADERS = bearer(TOKEN)
EXAMPLES = int(os.environ.get("JOBTASK_OPENAPI_EXAMPLES", "25"))  # per operation; under a minute on 2 cores

# Refusals of schema-valid requests that are answers about the data, or rules JSON Schema cannot
# say: (code, a regular expression its message matches).
TOLERATED = [
    # The Job's state, not the request: only an IN_PROGRESS Job can be canceled (SpaceONE: 400).
    ("ERROR_JOB_STATE", r"Only running jobs can be canceled"),
    # Which keys exist at a stage of an aggregate: the resource's fields before the first group,
    # project or count, the names those produced after it. The document gives every stage key
    # the union of the two (STAGE_KEY); an array's items cannot depend on the items before them.
    ("ERROR_INVALID_PARAMETER", r"key = aggregate\.[a-z_.]+, reason = '.*' is not a field at this stage"),
    ("ERROR_INVALID_PARAMETER", r"key = aggregate\.[a-z_.]+, reason = '.*' is not a (JobTask|Job) field"),
    # Likewise whether such a key is a datetime field of the resource, compared with ISO 8601 texts
    # only (after a group, a name of the same spelling holds whatever the group put there).
    ("ERROR_DB_QUERY", r"reason = aggregate\.(match\.filter|group\.fields\.conditions\.value): "
                       r".*is not an ISO 8601 datetime"),
    # Names unique within a group or project stage: uniqueness of a property across an array's items.
    ("ERROR_INVALID_PARAMETER", r"key = aggregate\.(group|project), reason = names must be unique"),
    # Calculations nested at most 8 deep, a body at most 32 levels: depth bounds on recursive schemas.
    ("ERROR_INVALID_PARAMETER", r"key = aggregate\.project\.fields, reason = calculations nest too deep"),
    ("ERROR_INVALID_PARAMETER", r"reason = nested deeper than 32 levels"),
    # A regular expression must also run in linear time (worker.read.patterns): a rule over the shape of
    # the pattern, which the document states in words only.
    ("ERROR_INVALID_PARAMETER", r"reason = the regular expressions? .* refused: "),
    # Lone surrogates (JSON can escape them, UTF-8 cannot carry them): JSON Schema has no word for them.
    ("ERROR_INVALID_PARAMETER", r"reason = text is not valid UTF-8"),
]
RESOURCES = {"job-task": JOB_TASK, "job": JOB}
PLANS = {"list": plan_list, "stat": plan_stat}


class CurrentApp:
    """The ASGI app schemathesis calls: forwards HTTP to ``target`` and answers the lifespan itself.

    The schema is loaded at import (pytest 9 breaks ``schemathesis.pytest.from_fixture``), before the
    store exists; and schemathesis ends an app's lifespan after every test, while create_app's
    shutdown closes its store client for good. So the fixture points ``target`` at the real app
    and closes that one's connections itself.
    """

    def __init__(self, target):
        self.target = target

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.target(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


CURRENT = CurrentApp(create_app(load_settings()))  # serves /openapi.json without a store
schema = schemathesis.openapi.from_asgi("/openapi.json", CURRENT)
schema.config.generation.update(modes=list(schemathesis.GenerationMode))  # positive and negative
schema = schema.exclude(path="/cost-analysis/v1/job-task/watch").exclude(path_regex="^/console")


@pytest.fixture(scope="module")
def api(broker_url, store_url, tmp_path_factory):
    pipeline = Pipeline(broker_url, store_url, tmp_path_factory.mktemp("openapi"))
    pipeline.start_worker(concurrency=1)
    drive(pipeline, seed_specs())
    tokens = {**TOKENS, TOKEN: {"domain_id": "domain-a", "permissions": ["read", "cancel"]}}
    real = create_app(api_settings(store_url, pipeline.db_name, broker_url, api_tokens=tokens, queue=pipeline.queue))
    previous, CURRENT.target = CURRENT.target, real
    yield real
    CURRENT.target = previous
    real.state.connections.close()
    pipeline.close()


def tolerated(case, response) -> bool:
    """Whether a 400 is one of ``TOLERATED``, or the store's refusal of a request every validator accepted."""
    if response.status_code != 400:
        return False
    try:
        detail = response.json()["detail"]
        code, message = detail["code"], detail["message"]
    except (ValueError, KeyError, TypeError):
        return False
    if any(code == known and re.search(pattern, message, re.DOTALL) for known, pattern in TOLERATED):
        return True
    return code == "ERROR_DB_QUERY" and planned(case)


def planned(case) -> bool:
    """Whether the read's own translation accepts the body: then the store refused it, on this data."""
    resource, method = case.path.rsplit("/", 3)[-2:]
    if resource not in RESOURCES or method not in PLANS:
        return False
    try:
        PLANS[method](RESOURCES[resource], case.body, Scope("domain-a"), 100, datetime.now(UTC))
    except CodedError:
        return False
    return True


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_openapi_agrees_with_the_validators(api, case):
    response = case.call(headers=HEADERS)
    excluded = [positive_data_acceptance] if tolerated(case, response) else None
    case.validate_response(response, headers=HEADERS, excluded_checks=excluded, transport_kwargs={"headers": HEADERS})
