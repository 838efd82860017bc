"""The bodies of get / list / stat as pydantic models: what validates them describes them.

SpaceONE's ``Query`` and ``StatisticsQuery`` and the request parameters
around them are built per ``Resource`` by ``request_models``;
``/openapi.json`` is generated from these models, and ``worker.read.parse``
validates every body against them, for HTTP, the CLI and the tests alike.

The models check the shape: which parameters and query keys exist, their
types, the status choice, what is required. What needs the meaning of a
query is checked by the translation (``worker.read.query``, ``worker.read.stat_query``)
with SpaceONE's codes: each filter condition, sort key, page window and
aggregate stage, against the fields that exist at that point. Those parts
are typed ``SkipValidation`` here: described exactly, validated once, there.
Both read the same tables (``worker.read.language`` and ``STAGES`` below),
so the description cannot drift from what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    SkipValidation,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from worker.read.language import (
    CALCULATIONS,
    CONDITIONAL_GROUP_OPERATORS,
    DATE_PARTS,
    FILTER_OPERATORS,
    GROUP_CONDITION_OPERATORS,
    GROUP_OPERATORS,
    INT32,
    NAME,
    PROJECT_OPERATORS,
)
from worker.read.resource import Resource

# --- value types ------------------------------------------------------------------------------


def _blank_is_missing(value: Any) -> Any:
    if value is None or value == "":
        raise PydanticCustomError("missing", "Field required")
    return value


def _none_is_missing(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("missing", "Field required")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _falsy_is_none(value: Any) -> Any:
    return value or None


def choice(values: tuple[str, ...]) -> Any:
    """A text that must be one of ``values``, described as an enum."""

    def one_of(value: str) -> str:
        if value not in values:
            raise PydanticCustomError("one_of", "must be one of {choices}", {"choices": ", ".join(values)})
        return value

    return Annotated[str, AfterValidator(one_of), WithJsonSchema({"type": "string", "enum": list(values)})]


def field_key(resource: Resource) -> Any:
    """A text naming one of ``resource``'s fields, or a path into an open field."""
    names = {"enum": list(resource.fields)}
    schema: dict[str, Any] = {"type": "string", "description": f"A {resource.name} field", **names}
    if resource.open_fields:
        opens = sorted(resource.open_fields)
        paths = {"pattern": f"^({'|'.join(opens)})(\\.[^.$][^.]*)+$"}
        schema.pop("enum")
        schema.update(description=f"A {resource.name} field, or a dotted path into {', '.join(opens)}",
                      anyOf=[names, paths])
    return Annotated[str, WithJsonSchema(schema)]


Name = Annotated[str, Field(pattern=NAME.pattern, description="The name this stage gives its output")]
Param = Annotated[str | None, BeforeValidator(_blank_is_none)]


class _Strict(BaseModel):
    # Request bodies and queries name only keys they know: a typo is an error, not a no-op.
    model_config = ConfigDict(extra="forbid")


class _Options(BaseModel):
    # Conditions, sort items, the page and stage options are read key by key by the
    # translation, which ignores keys it does not know.
    model_config = ConfigDict(extra="ignore")


# --- the parts of a Query -------------------------------------------------------------------------


class Condition(_Options):
    """One filter condition; k, v, o may also be spelled key, value, operator."""

    k: str = Field(description="A field (in an aggregate match: a name the stages before produced)")
    v: Any = Field(description="The value; a list for "
                   + ", ".join(name for name, takes_list in FILTER_OPERATORS.items() if takes_list))
    o: Literal[tuple(FILTER_OPERATORS)]  # type: ignore[valid-type]


class SortItem(_Options):
    key: str
    desc: bool = False


class Page(_Options):
    """A window of the results."""

    start: int = Field(
        1, ge=INT32[0], le=INT32[1], description="1-based index of the first result; below 1 counts as 1"
    )
    limit: int = Field(
        0, ge=INT32[0], le=INT32[1],
        description="Applied when > 0; capped by the server (JOBTASK_MAX_PAGE_SIZE)",
    )


# --- the stages of a StatisticsQuery ------------------------------------------------------------------


class Unwind(_Options):
    """One row per element of an array field."""

    path: str


class GroupKey(_Options):
    """A group key; k and n may stand for key and name."""

    key: str
    name: Name
    date_format: str | None = Field(
        None, description=f"{', '.join(DATE_PARTS)}, or a $dateToString format such as %Y-%m"
    )


class GroupCondition(_Options):
    """Counted or summed only where it holds; k, v, o may also be spelled key, value, operator."""

    k: str
    v: Any
    o: Literal[tuple(GROUP_CONDITION_OPERATORS)]  # type: ignore[valid-type]


class PushedField(_Options):
    key: str
    name: Name


class GroupField(_Options):
    """An accumulated field; k, n, o may stand for key, name, operator."""

    operator: Literal[tuple(GROUP_OPERATORS)]  # type: ignore[valid-type]
    name: Name
    key: str | None = Field(None, description="What is accumulated (count needs none)")
    conditions: list[GroupCondition] | None = Field(
        None, description=f"Only for {', '.join(CONDITIONAL_GROUP_OPERATORS)}; ANDed"
    )
    fields: list[PushedField] | None = Field(None, description="push: one object per row, without key")


class Group(_Options):
    """Rows grouped by keys (none: one group) with accumulated fields; at least one of the two."""

    keys: list[GroupKey] = []
    fields: list[GroupField] = []


class Count(_Options):
    """The number of rows, as one row {name: n}."""

    name: Name


class Calculation(_Options):
    """Arithmetic over keys, numbers and nested calculations (f may stand for fields)."""

    operator: Literal[tuple(CALCULATIONS)]  # type: ignore[valid-type]
    fields: list[str | float | Calculation] = Field(
        min_length=1, description="Two for subtract and divide"
    )


class ProjectField(_Options):
    """A projected field: a key as is, or an operator over it (a calculation: over fields)."""

    name: Name
    key: str | None = None
    operator: Literal[tuple(PROJECT_OPERATORS)] | None = None  # type: ignore[valid-type]
    fields: list[str | float | Calculation] | None = Field(
        None, description=f"The operands of {', '.join(CALCULATIONS)}"
    )


class Project(_Options):
    """Only the named fields; group keys stay unless exclude_keys."""

    fields: list[ProjectField] = Field(min_length=1)
    exclude_keys: bool = False


class Sort(RootModel[list[SortItem] | SortItem]):
    """Order of the rows."""


class Limit(RootModel[Annotated[int, Field(ge=1, le=INT32[1])]]):
    """At most this many rows."""


class Skip(RootModel[Annotated[int, Field(ge=0, le=INT32[1])]]):
    """Skip this many rows."""


class Match(_Options):
    """Only the rows where every condition holds (keys as they are at this stage)."""

    filter: list[Condition] = []


# Every stage a StatisticsQuery may use, in SpaceONE's order, and what it takes.
STAGES: dict[str, type[BaseModel]] = {
    "unwind": Unwind,
    "group": Group,
    "count": Count,
    "sort": Sort,
    "project": Project,
    "limit": Limit,
    "skip": Skip,
    "match": Match,
}

_STAGE_MODELS = tuple(
    # A field named at run time: mypy checks its value against create_model's own keywords too.
    create_model(f"{name.title()}Stage", __base__=_Strict, **{name: (options, ...)})  # type: ignore[call-overload]
    for name, options in STAGES.items()
)
Stage = Union[_STAGE_MODELS]  # type: ignore[valid-type]  # noqa: UP007 -- a union of a tuple made at run time


# --- the request and response bodies of one resource ---------------------------------------------


class RequestBase(_Strict):
    """What every request body shares: SpaceONE clients send their domain, which the token overrides."""

    domain_id: SkipValidation[Any] = Field(
        None, description="Accepted and ignored: the domain always comes from the token"
    )


class StatisticsQueryBase(_Strict):
    """A StatisticsQuery asks for aggregate stages or a distinct key: without both it asks nothing."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"anyOf": [{"required": ["aggregate"]}, {"required": ["distinct"]}]}
    )

    @model_validator(mode="after")
    def _aggregate_or_distinct(self) -> StatisticsQueryBase:
        if not self.aggregate and not self.distinct:  # type: ignore[attr-defined]
            raise PydanticCustomError("missing", "Field required", {"key": "aggregate"})
        return self


# Parameters every body accepts without their being part of its contract.
IGNORED_PARAMS = frozenset(RequestBase.model_fields)


@dataclass(frozen=True)
class RequestModels:
    """The request bodies of one resource's get / list / stat, and the Query of list."""

    get: type[BaseModel]
    list: type[BaseModel]
    stat: type[BaseModel]
    query: type[BaseModel]


@cache
def request_models(resource: Resource) -> RequestModels:
    """The bodies of ``resource``'s get / list / stat, named after it (``ListJobTasksRequest``)."""
    name, plural, key = resource.name, resource.plural, field_key(resource)
    condition = create_model(f"{name}Condition", __base__=Condition, __doc__=Condition.__doc__,
                             k=(key, ...))
    sort_item = create_model(f"{name}SortItem", __base__=SortItem, key=(key, ...))
    filters: dict[str, Any] = {
        "filter": (list[SkipValidation[condition]] | None, Field(None, description="ANDed")),
        "filter_or": (
            list[SkipValidation[condition]] | None,
            Field(None, description="ORed, then ANDed with filter"),
        ),
        "keyword": (
            str | None,
            Field(None, description=f"A case-insensitive substring of {resource.id_field}"),
        ),
    }
    page = (SkipValidation[Page | None], None)  # type: ignore[misc]  # mypy sees pydantic's alias, not the class
    query = create_model(
        f"{name}Query",
        __base__=_Strict,
        __doc__=f"SpaceONE core Query over {plural}.",
        **filters,
        sort=(
            SkipValidation[list[sort_item] | sort_item | None],  # type: ignore[misc]  # as page
            Field(None, description=f"Default: {_sort_text(resource.default_sort)}; "
                  f"ties always end in {resource.id_field} order"),
        ),
        page=page,
        minimal=(bool | None, Field(None, description=f"Only {', '.join(resource.minimal_fields)}")),
        only=(list[key] | None, Field(None, description="Only these fields")),  # type: ignore[valid-type]  # key: a run-time type
        count_only=(bool | None, Field(None, description="Only total_count")),
    )
    statistics_query = create_model(
        f"{name}StatisticsQuery",
        __base__=StatisticsQueryBase,
        __doc__=f"SpaceONE core StatisticsQuery over {plural}: aggregate stages or one distinct key.",
        **filters,
        page=page,
        aggregate=(
            SkipValidation[list[Stage] | None],  # type: ignore[misc]  # as page
            Field(None, description="Stages in order, each exactly one of " + ", ".join(STAGES)),
        ),
        distinct=(
            Annotated[key | None, BeforeValidator(_falsy_is_none)],
            Field(None, description="The distinct values of one field, sorted"),
        ),
    )
    status: Any = Annotated[choice(resource.statuses) | None, BeforeValidator(_blank_is_none)]
    params: dict[str, Any] = {param: (status if param == "status" else Param, None) for param in resource.param_filters}
    get_params: dict[str, Any] = {
        param: (Annotated[str, BeforeValidator(_blank_is_missing)], ...)
        if param == resource.id_field else (Param, None)
        for param in resource.get_params
    }
    get = create_model(f"Get{name}Request", __base__=RequestBase, **get_params)
    listing = create_model(
        f"List{plural}Request", __base__=RequestBase, **params,
        query=(query | None, Field(None, description="Default: everything the token may read")),
    )
    stat = create_model(
        f"Stat{plural}Request", __base__=RequestBase, **params,
        query=(Annotated[statistics_query, BeforeValidator(_none_is_missing)], ...),
    )
    return RequestModels(get=get, list=listing, stat=stat, query=query)


def _sort_text(sort: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{path} {'descending' if order < 0 else 'ascending'}" for path, order in sort)

