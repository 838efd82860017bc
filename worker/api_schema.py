"""The OpenAPI description of the read API's bodies, for ``/openapi.json``.

Documentation only: bodies are checked by ``worker.query`` (one validation
path for HTTP, CLI and tests, with SpaceONE error codes), so these schemas
describe what is accepted rather than enforce it.
"""

from __future__ import annotations

from worker.query_fields import JOB_TASK_FIELDS, STATUSES

_ID = {"type": "string", "minLength": 1}
_CONDITION = {
    "type": "object",
    "description": "A condition; k/v/o may also be spelled key/value/operator.",
    "properties": {
        "k": {"type": "string", "description": "A JobTask field or options.<path>"},
        "v": {"description": "The value (a list for in, not_in, contain_in, not_contain_in, regex_in)"},
        "o": {
            "type": "string",
            "enum": [
                "eq", "not", "exists", "contain", "not_contain", "in", "not_in", "contain_in",
                "not_contain_in", "lt", "lte", "gt", "gte", "match", "regex", "regex_in",
                "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte",
                "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte",
            ],
        },
    },
}
_PAGE = {
    "type": "object",
    "properties": {
        "start": {"type": "integer", "description": "1-based; below 1 counts as 1"},
        "limit": {"type": "integer", "description": "applied when > 0; capped by the server"},
    },
}
_SORT_ITEM = {
    "type": "object",
    "required": ["key"],
    "properties": {"key": {"type": "string"}, "desc": {"type": "boolean"}},
}
_SORT = {"oneOf": [{"type": "array", "items": _SORT_ITEM}, _SORT_ITEM]}
_FILTERS = {
    "filter": {"type": "array", "items": _CONDITION, "description": "ANDed"},
    "filter_or": {"type": "array", "items": _CONDITION, "description": "ORed, then ANDed with filter"},
    "keyword": {"type": "string", "description": "substring of job_task_id"},
    "page": _PAGE,
}

QUERY = {
    "type": "object",
    "description": "SpaceONE core Query",
    "properties": {
        **_FILTERS,
        "sort": _SORT,
        "only": {"type": "array", "items": {"type": "string"}},
        "minimal": {"type": "boolean"},
        "count_only": {"type": "boolean"},
    },
}
STATISTICS_QUERY = {
    "type": "object",
    "description": "SpaceONE core StatisticsQuery: aggregate stages or one distinct key.",
    "properties": {
        **_FILTERS,
        "aggregate": {
            "type": "array",
            "description": "Stages, each one of unwind, group, count, sort, project, limit, skip, match",
            "items": {"type": "object"},
        },
        "distinct": {"type": "string"},
    },
}
_PARAMS = {
    "job_task_id": _ID,
    "status": {"type": "string", "enum": list(STATUSES)},
    "workspace_id": _ID,
    "job_id": _ID,
    "data_source_id": _ID,
}
GET_REQUEST = {
    "type": "object",
    "required": ["job_task_id"],
    "properties": {"job_task_id": _ID, "workspace_id": _ID},
}
LIST_REQUEST = {"type": "object", "properties": {**_PARAMS, "query": QUERY}}
STAT_REQUEST = {"type": "object", "required": ["query"], "properties": {**_PARAMS, "query": STATISTICS_QUERY}}

JOB_TASK_INFO = {
    "type": "object",
    "description": "Fields with no value are left out; timestamps like 2022-07-17T16:00:08.266Z",
    "properties": {
        name: (
            {"type": "object"} if name == "options"
            else {"type": "integer"} if name == "created_count"
            else {"type": "string"}
        )
        for name in JOB_TASK_FIELDS
    },
}
LIST_RESPONSE = {
    "type": "object",
    "properties": {
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/JobTaskInfo"}},
        "total_count": {"type": "integer"},
    },
}
STAT_RESPONSE = {
    "type": "object",
    "properties": {"results": {"type": "array", "items": {}}, "total_count": {"type": "integer"}},
}
ERROR_RESPONSE = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}

COMPONENTS = {
    "GetJobTaskRequest": GET_REQUEST,
    "ListJobTasksRequest": LIST_REQUEST,
    "StatJobTasksRequest": STAT_REQUEST,
    "JobTaskInfo": JOB_TASK_INFO,
    "JobTasksInfo": LIST_RESPONSE,
    "StatResponse": STAT_RESPONSE,
    "Error": ERROR_RESPONSE,
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def operation(request: str, response: str) -> dict:
    """``openapi_extra`` for one POST route: its body and its coded errors."""
    error = {"content": {"application/json": {"schema": _ref("Error")}}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _ref(response)}}},
            "400": {"description": "Invalid request (SpaceONE code)", **error},
            "401": {"description": "ERROR_AUTHENTICATE_FAILURE", **error},
            "403": {"description": "ERROR_PERMISSION_DENIED", **error},
            "404": {"description": "ERROR_NOT_FOUND", **error},
            "503": {"description": "ERROR_DB_UNAVAILABLE", **error},
            "504": {"description": "ERROR_QUERY_TIMEOUT", **error},
        },
        "security": [{"bearer": []}],
    }
