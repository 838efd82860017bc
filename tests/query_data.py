"""Hypothesis strategies for SpaceONE queries: real keys and operators mixed with hostile ones."""

from __future__ import annotations

from hypothesis import strategies as st

KEYS = st.sampled_from(
    [
        "status",
        "options.a",
        "options",
        "created_at",
        "job_task_id",
        "domain_id",
        "$where",
        "_applied",
        "options.$x",
        "",
        "a.b",
        "n",
        "tag",
    ]
)
OPS = st.sampled_from(
    [
        "eq",
        "not",
        "exists",
        "contain",
        "not_contain",
        "in",
        "not_in",
        "contain_in",
        "not_contain_in",
        "lt",
        "lte",
        "gt",
        "gte",
        "match",
        "regex",
        "regex_in",
        "datetime_lt",
        "timediff_gte",
        "bogus",
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["now-1d", "2024-01-01T00:00:00Z", "$where", "("]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | KEYS, inner, max_size=3)
    ),
    max_leaves=8,
)
CONDITION = st.fixed_dictionaries({}, optional={"k": KEYS | JSON, "v": JSON, "o": OPS | JSON})
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "key": KEYS | JSON,
        "name": KEYS | JSON,
        "operator": st.sampled_from(["count", "sum", "push", "size", "add", "divide", "first", "x"]) | JSON,
        "fields": st.lists(KEYS | st.integers() | JSON, max_size=3),
        "date_format": st.sampled_from(["year", "%Y"]),
        "conditions": st.lists(CONDITION, max_size=2),
    },
)
STAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "group": st.fixed_dictionaries(
                {}, optional={"keys": st.lists(SPEC, max_size=2), "fields": st.lists(SPEC, max_size=2)}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "project": st.fixed_dictionaries(
                {}, optional={"fields": st.lists(SPEC, max_size=2), "exclude_keys": st.booleans()}
            )
        }
    ),
    st.fixed_dictionaries({"match": st.fixed_dictionaries({"filter": st.lists(CONDITION, max_size=2)})}),
    st.dictionaries(
        st.sampled_from(["unwind", "count", "sort", "limit", "skip", "bogus"]), JSON, min_size=1, max_size=1
    ),
)
QUERY = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.lists(CONDITION, max_size=3) | JSON,
        "filter_or": st.lists(CONDITION, max_size=2),
        "sort": JSON | st.lists(st.fixed_dictionaries({"key": KEYS, "desc": st.booleans()}), max_size=2),
        "page": st.fixed_dictionaries({}, optional={"start": st.integers(), "limit": st.integers()}) | JSON,
        "only": st.lists(KEYS, max_size=2),
        "minimal": JSON,
        "count_only": JSON,
        "keyword": JSON,
        "aggregate": st.lists(STAGE, max_size=4) | JSON,
        "distinct": KEYS | JSON,
    },
)
