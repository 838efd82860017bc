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
Both read the same tables and patterns (``worker.read.language`` and
``STAGES`` below), so the description cannot drift from what is accepted:
each operator's value, the two spellings of an object (``{k, v, o}`` or
``{key, value, operator}``, not a mix), which options a stage's operator
takes, are the object's shapes: a flat ``anyOf`` beside its properties
(``_Rules``). Keys they do not know are ignored by the translation and
described as ``Value``s.

What JSON Schema cannot say is said in the descriptions: which keys exist
at a stage of an aggregate (what the stages before it produced), names
unique within a stage, calculations nested at most 8 deep, a body nested
at most ``MAX_DEPTH`` levels, text without lone surrogates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union

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
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from worker.read.language import (
    CALCULATIONS,
    CONDITIONAL_GROUP_OPERATORS,
    DATE_FORMAT,
    DATE_PARTS,
    FILTER_OPERATORS,
    GROUP_CONDITION_OPERATORS,
    GROUP_OPERATORS,
    INT32,
    INT64,
    ISO_DATETIME,
    MAX_DEPTH,
    NAME,
    PATH_SEGMENT,
    PROJECT_OPERATORS,
    SAFE_KEY,
    SPELLINGS,
    STAGE_KEY,
    TIMEDIFF,
)
from worker.read.patterns import MAX_PATTERN_LENGTH
from worker.read.resource import Resource

Schema = dict[str, Any]

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


def choice(values: tuple[str, ...]) -> Any:
    """A text that must be one of ``values``, described as an enum."""

    def one_of(value: str) -> str:
        if value not in values:
            raise PydanticCustomError("one_of", "must be one of {choices}", {"choices": ", ".join(values)})
        return value

    return Annotated[str, AfterValidator(one_of), WithJsonSchema({"type": "string", "enum": list(values)})]


def field_key_schema(resource: Resource, exclude: frozenset[str] = frozenset()) -> Schema:
    """The JSON Schema of a text naming one of ``resource``'s fields (but ``exclude``), or a path into an open field."""
    names = {"enum": [name for name in resource.fields if name not in exclude]}
    schema: Schema = {"type": "string", "description": f"A {resource.name} field", **names}
    if resource.open_fields:
        opens = sorted(resource.open_fields)
        paths = {"pattern": f"^({'|'.join(opens)})(\\.{PATH_SEGMENT})+$"}
        schema.pop("enum")
        schema.update(description=f"A {resource.name} field, or a dotted path into {', '.join(opens)}",
                      anyOf=[names, paths])
    return schema


def field_key(resource: Resource) -> Any:
    """A text naming one of ``resource``'s fields, or a path into an open field (``field_key_schema``)."""
    return Annotated[str, WithJsonSchema(field_key_schema(resource))]


def _text(pattern: re.Pattern[str], description: str) -> Schema:
    return {"type": "string", "pattern": pattern.pattern, "description": description}


STAGE_KEY_SCHEMA = _text(
    STAGE_KEY,
    "Before the first group, project or count: a field of the resource, or a dotted path into an "
    "open field; after it: a name those stages produced, or a dotted path into it",
)
ISO_DATETIME_SCHEMA = _text(
    ISO_DATETIME, "An ISO 8601 date, optionally with a time (T or a space, hh:mm[:ss[.ffffff]]) and Z or "
    "an offset ±hh:mm; without one it is UTC",
)
TIMEDIFF_SCHEMA = _text(TIMEDIFF, "now, now/d, now/w or now/m, optionally + or - a number of s, m (up to 9 "
                        "digits), h (7), d (5) or w (4)")
REGEX_SCHEMA: Schema = {
    "type": "string", "format": "regex", "maxLength": MAX_PATTERN_LENGTH,
    "description": "A regular expression, case-insensitive, in RE2's syntax and shaped to run in linear time: "
    "no backreferences or lookaround, no quantifier or alternation inside a repeated group, nothing after a "
    "quantifier that can begin like the quantified part, and a long repetition either anchored (^) or unlike "
    "the pattern's first character",
}
TEXT_SCHEMA: Schema = {"type": ["string", "number"], "description": "A text (a number is taken as its text)"}

StageKey = Annotated[str, WithJsonSchema(STAGE_KEY_SCHEMA)]
Name = Annotated[str, Field(pattern=NAME.pattern, description="The name this stage gives its output")]
Param = Annotated[str | None, BeforeValidator(_blank_is_none)]
Number = Annotated[float, Field(ge=INT64[0], le=INT64[1])]


def _value_schema(schema: JsonDict) -> None:
    target: Schema = schema
    for branch in target.get("anyOf") or []:
        if isinstance(branch, dict) and branch.get("type") == "object":
            branch["propertyNames"] = {"pattern": SAFE_KEY.pattern}
    target["description"] = (
        "Any JSON value the store can hold: object keys without NUL, not starting with '$'; numbers "
        f"within a 64-bit integer's range; text without lone surrogates; at most {MAX_DEPTH} levels of "
        "objects and lists from the top of the body"
    )


class Value(RootModel[None | bool | Number | str | list["Value"] | dict[str, "Value"]]):
    """Any JSON value the store can hold (``worker.read.fields.check_body``)."""

    model_config = ConfigDict(json_schema_extra=_value_schema)


# --- JSON Schema rules of the parts the translation validates ------------------------------------

NULL: Schema = {"type": "null"}
BLANK: Schema = {"type": "string", "const": ""}
TEXT: Schema = {"type": "string"}
NOT_A_LIST: Schema = {"type": ["null", "boolean", "number", "string", "object"]}


def _shapes(names: Sequence[str], shapes: Sequence[Schema]) -> Schema:
    """``shapes`` (each an object schema naming the long spelling) in either spelling of ``names``.

    An object uses one spelling throughout (``worker.read.conditions.Spelled``), so each shape is
    offered twice: with the long names and the short ones barred, and the other way round. One
    flat ``anyOf`` of plain objects, which schema tools read without multiplying alternatives.
    """
    if not names:
        return shapes[0] if len(shapes) == 1 else {"anyOf": list(shapes)}
    spelled = []
    for short in (False, True):
        rename = {name: SPELLINGS[name] if short else name for name in names}
        barred = {SPELLINGS[name] if not short else name: False for name in names}
        for shape in shapes:
            spelled.append({
                **shape,
                "required": [rename.get(name, name) for name in shape.get("required", [])],
                "properties": {**barred, **{rename.get(name, name): rule
                                            for name, rule in shape.get("properties", {}).items()}},
            })
    return {"anyOf": spelled}


class _Rules:
    """``json_schema_extra`` of a part the translation validates: the shapes it may take.

    ``names`` are its parameters that have a short spelling (``SPELLINGS``); ``shapes(model)``
    the objects it may be, by the long names, one of which it must be (their ``required``
    replaces pydantic's, which cannot say "one of"). Its keys are ``SAFE_KEY``s; keys it does not
    know are ignored, whatever they hold (``Value``).
    """

    def __init__(self, names: Sequence[str] = (), shapes: Callable[[Any], list[Schema]] | None = None) -> None:
        self.names, self.shapes = names, shapes

    def __call__(self, schema: JsonDict, model: type[Any]) -> None:
        target: Schema = schema
        target["propertyNames"] = {"pattern": SAFE_KEY.pattern}
        if self.shapes is not None:
            target.pop("required", None)
            target.update(_shapes(self.names, self.shapes(model)))


class _Options(BaseModel):
    # Conditions, sort items, the page and stage options are read key by key by the translation,
    # which ignores keys it does not know (described as ``Value``s). Never validated by pydantic.
    model_config = ConfigDict(extra="allow", json_schema_extra=_Rules())
    __pydantic_extra__: dict[str, Value]


class _Strict(BaseModel):
    # Request bodies and queries name only keys they know: a typo is an error, not a no-op.
    model_config = ConfigDict(extra="forbid")


# --- the parts of a Query -------------------------------------------------------------------------

_COMPARED = ("eq", "not", "lt", "lte", "gt", "gte")
_CONDITION = ("key", "value", "operator")


def condition_shapes(model: Any) -> list[Schema]:
    """What each filter operator takes (``worker.read.conditions``): one shape per kind of value.

    A datetime field of the resource (``model.datetime_fields``) compared to a text takes an ISO
    8601 one; any other key (``model.plain_key``) any value.
    """
    iso = {"pattern": ISO_DATETIME.pattern}
    datetimes, plain_key = model.datetime_fields, model.plain_key

    def takes(operators: Sequence[str], value: Schema, **more: Schema) -> Schema:
        return {"required": list(_CONDITION),
                "properties": {"operator": {"enum": list(operators)}, "value": value, **more}}

    def compared(value: Schema) -> Schema:
        return {**value, **iso} if datetimes else value

    shapes = [
        takes(("in", "not_in"), {"type": "array", **({"items": iso} if datetimes else {})}),
        takes(("contain_in", "not_contain_in"), {"type": "array", "items": TEXT_SCHEMA}),
        takes(("regex_in",), {"type": "array", "items": REGEX_SCHEMA}),
        takes(_COMPARED, compared(NOT_A_LIST)),
        takes(("exists",), {"type": "boolean"}),
        takes(("contain", "not_contain"), TEXT_SCHEMA),
        takes(("match",), {"type": "object"}),
        takes(("regex",), REGEX_SCHEMA),
        takes([name for name in FILTER_OPERATORS if name.startswith("datetime_")], ISO_DATETIME_SCHEMA),
        takes([name for name in FILTER_OPERATORS if name.startswith("timediff_")], TIMEDIFF_SCHEMA),
    ]
    if datetimes:
        shapes += [takes(("in", "not_in"), {"type": "array"}, key=plain_key),
                   takes(_COMPARED, NOT_A_LIST, key=plain_key)]
    assert {name for shape in shapes for name in shape["properties"]["operator"]["enum"]} == set(FILTER_OPERATORS)
    return shapes


class Condition(_Options):
    """One filter condition {k, v, o}, or spelled out {key, value, operator}.

    The value is a list for in, not_in, contain_in, not_contain_in, regex_in and not a list for the
    others; exists takes a boolean, match an object, contain* texts or numbers, regex* regular
    expressions, datetime_* ISO 8601 texts, timediff_* now-relative texts. A datetime field
    compared to a text (eq, not, lt, lte, gt, gte, in, not_in) takes ISO 8601 texts.
    """

    model_config = ConfigDict(json_schema_extra=_Rules(_CONDITION, condition_shapes))
    # The resource's datetime fields and a key naming none of them (in a match stage: none, the
    # stages before decide what the keys are).
    datetime_fields: ClassVar[tuple[str, ...]] = ()
    plain_key: ClassVar[Schema] = {}

    k: StageKey = Field(description="A field (in an aggregate match: as the stages before left them)")
    key: StageKey = Field(description="k spelled out")
    v: Value = Field(description="The value the operator takes")
    value: Value = Field(description="v spelled out")
    o: Literal[tuple(FILTER_OPERATORS)]  # type: ignore[valid-type]
    operator: Literal[tuple(FILTER_OPERATORS)] = Field(description="o spelled out")  # type: ignore[valid-type]


class SortItem(_Options):
    key: StageKey
    desc: bool = False


class Page(_Options):
    """A window of the results (integers; null is the default)."""

    start: int | None = Field(
        1, ge=INT32[0], le=INT32[1], description="1-based index of the first result; below 1 counts as 1"
    )
    limit: int | None = Field(
        0, ge=INT32[0], le=INT32[1],
        description="Applied when > 0; capped by the server (JOBTASK_MAX_PAGE_SIZE)",
    )


# --- the stages of a StatisticsQuery ------------------------------------------------------------------

_KEYED = ("key", "name")


def _keyed_shapes(_model: Any) -> list[Schema]:
    return [{"required": list(_KEYED)}]


class Unwind(_Options):
    """One row per element of an array field."""

    path: StageKey


class GroupKey(_Options):
    """A group key; k and n may stand for key and name (one spelling per key)."""

    model_config = ConfigDict(json_schema_extra=_Rules(_KEYED, _keyed_shapes))

    key: StageKey
    k: StageKey
    name: Name
    n: Name
    date_format: Annotated[str, Field(pattern=DATE_FORMAT.pattern)] | None = Field(
        None, description=f"{', '.join(DATE_PARTS)}, or a $dateToString format such as %Y-%m "
        "(each % one of %b %d %j %m %u %w %z %B %G %H %L %M %S %U %V %Y %Z %%)"
    )


def _group_condition_shapes(_model: Any) -> list[Schema]:
    return [{"required": list(_CONDITION)}]


class GroupCondition(_Options):
    """Counted or summed only where it holds: {k, v, o}, or spelled out {key, value, operator}."""

    model_config = ConfigDict(json_schema_extra=_Rules(_CONDITION, _group_condition_shapes))

    k: StageKey
    key: StageKey
    v: Value
    value: Value
    o: Literal[tuple(GROUP_CONDITION_OPERATORS)]  # type: ignore[valid-type]
    operator: Literal[tuple(GROUP_CONDITION_OPERATORS)]  # type: ignore[valid-type]


class PushedField(_Options):
    """One field of the object push makes per row; k and n may stand for key and name."""

    model_config = ConfigDict(json_schema_extra=_Rules(_KEYED, _keyed_shapes))

    key: StageKey
    k: StageKey
    name: Name
    n: Name


_GROUP_FIELD = ("operator", "name", "key")


def _group_field_shapes(_model: Any) -> list[Schema]:
    """count needs no key (one sent is checked); push takes a key or fields; the others a key.

    Only count, sum and average take conditions; only push takes fields.
    """
    def field(operators: Sequence[str], *required: str, **rules: Schema) -> Schema:
        return {"required": ["operator", "name", *required],
                "properties": {"operator": {"enum": list(operators)}, **rules}}

    others = [name for name in GROUP_OPERATORS if name not in CONDITIONAL_GROUP_OPERATORS and name != "push"]
    return [
        field(["count"], fields=NULL),
        field([name for name in CONDITIONAL_GROUP_OPERATORS if name != "count"], "key", key=TEXT, fields=NULL),
        field(others, "key", key=TEXT, fields=NULL, conditions=NULL),
        field(["push"], "key", key=TEXT, fields={"type": ["array", "null"], "maxItems": 0}, conditions=NULL),
        field(["push"], "fields", key=NULL, fields={"type": "array", "minItems": 1}, conditions=NULL),
    ]


class GroupField(_Options):
    """An accumulated field; k, n, o may stand for key, name, operator (one spelling per field).

    count needs no key (one sent is checked); push takes a key or fields; the others a key.
    """

    model_config = ConfigDict(json_schema_extra=_Rules(_GROUP_FIELD, _group_field_shapes))

    operator: Literal[tuple(GROUP_OPERATORS)]  # type: ignore[valid-type]
    o: Literal[tuple(GROUP_OPERATORS)]  # type: ignore[valid-type]
    name: Name
    n: Name
    key: StageKey | None = Field(None, description="What is accumulated (count needs none)")
    k: StageKey | None = None
    conditions: list[GroupCondition] | None = Field(
        None, description=f"Only for {', '.join(CONDITIONAL_GROUP_OPERATORS)}; ANDed"
    )
    fields: list[PushedField] | None = Field(None, description="push: one object per row, without key")


class Group(_Options):
    """Rows grouped by keys (none: one group) with accumulated fields; at least one of the two.

    The names of its keys and fields are unique.
    """

    model_config = ConfigDict(json_schema_extra=_Rules(shapes=lambda _model: [
        {"required": [part], "properties": {part: {"type": "array", "minItems": 1}}} for part in ("keys", "fields")
    ]))

    keys: list[GroupKey] | None = None
    fields: list[GroupField] | None = None


class Count(_Options):
    """The number of rows, as one row {name: n} (only "name": an "n" here is one more option)."""

    name: Name


_CALCULATION = ("operator", "fields")
_TWO = ("subtract", "divide")


def _calculations(*required: str, **rules: Schema) -> list[Schema]:
    """A calculation: add and multiply over one or more fields, subtract and divide over two."""
    return [
        {"required": [*required, "operator", "fields"],
         "properties": {"operator": {"enum": operators}, "fields": {"type": "array", **counts}, **rules}}
        for operators, counts in (([name for name in CALCULATIONS if name not in _TWO], {"minItems": 1}),
                                  (list(_TWO), {"minItems": 2, "maxItems": 2}))
    ]


class Calculation(_Options):
    """Arithmetic over keys, numbers and nested calculations (o, f may stand for operator, fields)."""

    model_config = ConfigDict(json_schema_extra=_Rules(_CALCULATION, lambda _model: _calculations()))

    operator: Literal[tuple(CALCULATIONS)]  # type: ignore[valid-type]
    o: Literal[tuple(CALCULATIONS)]  # type: ignore[valid-type]
    fields: list[StageKey | Number | Calculation] = Field(
        min_length=1, description="Two for subtract and divide; calculations nest at most 8 deep"
    )
    f: list[StageKey | Number | Calculation] = Field(min_length=1)


_PROJECT_FIELD = ("name", "key", "operator", "fields")


def _project_field_shapes(_model: Any) -> list[Schema]:
    over_key = [name for name in PROJECT_OPERATORS if name not in CALCULATIONS]
    return [
        {"required": ["name", "key"], "properties": {"key": TEXT, "operator": NULL, "fields": NULL}},
        {"required": ["name", "key", "operator"],
         "properties": {"key": TEXT, "operator": {"enum": over_key}, "fields": NULL}},
        *_calculations("name", key=NULL),
    ]


class ProjectField(_Options):
    """A projected field: a key as is, an operator over a key, or a calculation over fields.

    k, o, f may stand for key, operator, fields, and n for name (one spelling per field).
    """

    model_config = ConfigDict(json_schema_extra=_Rules(_PROJECT_FIELD, _project_field_shapes))

    name: Name
    n: Name
    key: StageKey | None = None
    k: StageKey | None = None
    operator: Literal[tuple(PROJECT_OPERATORS)] | None = None  # type: ignore[valid-type]
    o: Literal[tuple(PROJECT_OPERATORS)] | None = None  # type: ignore[valid-type]
    fields: list[StageKey | Number | Calculation] | None = Field(
        None, description=f"The operands of {', '.join(CALCULATIONS)}"
    )
    f: list[StageKey | Number | Calculation] | None = None


class Project(_Options):
    """Only the named fields (names unique); group keys stay unless exclude_keys."""

    fields: list[ProjectField] = Field(min_length=1)
    exclude_keys: bool = False


class Sort(RootModel[Annotated[list[SortItem], Field(min_length=1)] | SortItem]):
    """Order of the rows."""


class Limit(RootModel[Annotated[int, Field(ge=1, le=INT32[1])]]):
    """At most this many rows."""


class Skip(RootModel[Annotated[int, Field(ge=0, le=INT32[1])]]):
    """Skip this many rows."""


class Match(_Options):
    """Only the rows where every condition holds (keys as they are at this stage)."""

    filter: list[Condition] | None = None


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

    domain_id: str | None = Field(
        None, description="Accepted and ignored: the domain always comes from the token"
    )


def _asks_something(schema: JsonDict) -> None:
    # The distinct key's own schema is the first branch of the property's (``request_models``).
    target: Schema = schema
    distinct = target["properties"]["distinct"]["anyOf"][0]
    target["anyOf"] = [
        {"required": ["aggregate"], "properties": {"aggregate": {"type": "array", "minItems": 1}}},
        {"required": ["distinct"], "properties": {"distinct": distinct}},
    ]


class StatisticsQueryBase(_Strict):
    """A StatisticsQuery asks for aggregate stages or a distinct key: without both it asks nothing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_asks_something)

    @model_validator(mode="after")
    def _aggregate_or_distinct(self) -> StatisticsQueryBase:
        if not self.aggregate and not self.distinct:  # type: ignore[attr-defined]
            raise PydanticCustomError("missing", "Field required", {"key": "aggregate"})
        return self


# Parameters every body accepts without their being part of its contract.
IGNORED_PARAMS = frozenset(RequestBase.model_fields)


def body_required(model: type[BaseModel]) -> bool:
    """Whether a request of ``model`` needs a body: it has a required field (without a body, ``{}``)."""
    return any(field.is_required() for field in model.model_fields.values())


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
                             k=(key, ...), key=(key, Field(description="k spelled out")))
    condition.datetime_fields = tuple(sorted(resource.datetime_fields))
    condition.plain_key = field_key_schema(resource, exclude=resource.datetime_fields)
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
    distinct: Any = Annotated[key | None, BeforeValidator(_blank_is_none),
                              WithJsonSchema({"anyOf": [field_key_schema(resource), BLANK, NULL]})]
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
        distinct=(distinct, Field(None, description="The distinct values of one field, sorted ('' is as if not sent)")),
    )
    status: Any = Annotated[choice(resource.statuses) | None, BeforeValidator(_blank_is_none), WithJsonSchema(
        {"anyOf": [{"type": "string", "enum": list(resource.statuses)}, BLANK, NULL]})]
    params: dict[str, Any] = {
        param: (status, Field(None, description="'' is as if not sent")) if param == "status" else (Param, None)
        for param in resource.param_filters
    }
    get_params: dict[str, Any] = {
        param: (Annotated[str, BeforeValidator(_blank_is_missing), Field(min_length=1)], ...)
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

