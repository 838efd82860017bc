"""SpaceONE ``StatisticsQuery`` → MongoDB aggregation or distinct plan for one resource; no I/O.

``aggregate`` is a list of stages (their names and options are
``worker.read.models.STAGES``) translated one by one, as SpaceONE core
does. Keys are checked against what exists at that point of the pipeline:
the resource's fields (and ``options.*``) before the first
group/project/count, the names those stages produced after it; group keys
live under ``_id`` and are resolved there. Every user value inside an
expression is wrapped in ``$literal`` so a text such as ``"$domain_id"``
stays a text; a ``date_format``, which the store takes only as a plain text,
is held to specifiers and plain characters instead (``DATE_FORMAT``: no
``$``). The scoped filter always comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.contract.errors import (
    ERROR_DB_QUERY,
    ERROR_INVALID_PARAMETER,
    ERROR_INVALID_PARAMETER_TYPE,
    ERROR_REQUIRED_PARAMETER,
)
from worker.read.conditions import CONDITION_NAMES, Spelled, build_condition, parse_iso8601
from worker.read.fields import KeyResolver, field_path, field_ref
from worker.read.language import (
    CALCULATIONS,
    CONDITIONAL_GROUP_OPERATORS,
    DATE_FORMAT,
    DATE_PARTS,
    DATE_SPECIFIERS,
    GROUP_CONDITION_OPERATORS,
    GROUP_OPERATORS,
    NAME,
    PROJECT_OPERATORS,
)
from worker.read.models import (
    STAGES,
    Count,
    Group,
    Limit,
    Match,
    Project,
    Skip,
    Sort,
    Unwind,
    request_models,
)
from worker.read.parse import parse
from worker.read.query import (
    Scope,
    int32,
    list_param,
    page_window,
    param_clauses,
    scoped_filter,
    sort_spec,
    user_clauses,
)
from worker.read.resource import Resource


@dataclass(frozen=True)
class StatPlan:
    """A validated stat: a scoped ``match`` then the stages, or a distinct key."""

    match: dict[str, Any]
    stages: list[dict[str, Any]] = field(default_factory=list)
    distinct: str | None = None
    skip: int = 0
    limit: int = 0
    with_total: bool = False


class _Shape:
    """What the documents flowing through the pipeline look like at one stage.

    ``now`` is the query's clock, for the timediff values of a match stage.
    """

    def __init__(self, stored: KeyResolver, now: datetime) -> None:
        self.stored = stored
        self.now = now
        self.names: set[str] | None = None  # None: still the stored documents
        self.group_keys: set[str] = set()

    def ref(self, key: Any, where: str) -> tuple[str, bool]:
        if self.names is None:
            return self.stored(key, where)
        if not isinstance(key, str):
            raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="str")
        head = key.split(".", 1)[0]
        if head not in self.names or "\x00" in key or any(
            not part or part.startswith("$") for part in key.split(".")
        ):
            raise ERROR_INVALID_PARAMETER(
                key=where,
                reason=f"'{key}' is not a field at this stage (fields: {', '.join(sorted(self.names))})",
            )
        return (f"_id.{key}" if head in self.group_keys else key), False

    def expression(self, key: Any, where: str) -> str:
        return "$" + self.ref(key, where)[0]


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="object")
    return value


def _spec(value: Any, names: tuple[str, ...], where: str) -> Spelled:
    """One object of a stage, in the one spelling it uses of ``names``."""
    return Spelled(_dict(value, where), names, where)


def _name(spec: Spelled, where: str) -> str:
    """The ``name`` (or ``n``) of ``spec``, a ``NAME``."""
    return _name_value(spec.get("name"), spec.item, where)


def _name_value(name: Any, spec: dict[str, Any], where: str) -> str:
    if name is None:
        raise ERROR_DB_QUERY(reason=f"'{where}' condition requires a name: {spec}")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ERROR_INVALID_PARAMETER(
            key=f"{where}.name",
            reason="a name is 1 to 128 letters, digits, '_' or '-', not starting with '_' or '-'",
        )
    return name


def _key(spec: Spelled, where: str) -> Any:
    """The ``key`` (or ``k``) of ``spec``, which it must have."""
    key = spec.get("key")
    if key is None:
        raise ERROR_DB_QUERY(reason=f"'{where}' condition requires a key: {spec.item}")
    return key


_KEYED = ("key", "name")
_GROUP_FIELD = ("operator", "name", "key")
_PROJECT_FIELD = ("name", "key", "operator", "fields")
_CALCULATION = ("operator", "fields")


def _distinct_names(names: list[str], where: str) -> set[str]:
    if len(set(names)) != len(names):
        raise ERROR_INVALID_PARAMETER(key=where, reason="names must be unique")
    return set(names)


# --- stages --------------------------------------------------------------------------------------


def _unwind(options: Any, shape: _Shape) -> dict[str, Any]:
    options = _dict(options, "aggregate.unwind")
    if "path" not in options:
        raise ERROR_REQUIRED_PARAMETER(key="aggregate.unwind.path")
    return {"$unwind": shape.expression(options["path"], "aggregate.unwind.path")}


def _group(options: Any, shape: _Shape) -> dict[str, Any]:
    options = _dict(options, "aggregate.group")
    keys = list_param(options.get("keys"), "aggregate.group.keys")
    fields = list_param(options.get("fields"), "aggregate.group.fields")
    if not keys and not fields:
        raise ERROR_REQUIRED_PARAMETER(key="aggregate.group.keys || aggregate.group.fields")
    group_id: dict[str, Any] = {}
    accumulators: dict[str, Any] = {}
    names = []
    for item in keys:
        spec = _spec(item, _KEYED, "aggregate.group.keys")
        path, _ = shape.ref(_key(spec, "aggregate.group.keys"), "aggregate.group.keys.key")
        names.append(_name(spec, "aggregate.group.keys"))
        group_id[names[-1]] = _date_key(path, spec.item.get("date_format"))
    for item in fields:
        spec = _spec(item, _GROUP_FIELD, "aggregate.group.fields")
        names.append(_name(spec, "aggregate.group.fields"))
        accumulators[names[-1]] = _accumulator(spec, shape)
    _distinct_names(names, "aggregate.group")
    shape.names = set(group_id) | set(accumulators)
    shape.group_keys = set(group_id)
    return {"$group": {"_id": group_id or None, **accumulators}}


def _date_key(path: str, date_format: Any) -> Any:
    if date_format is None:
        return f"${path}"
    if not isinstance(date_format, str) or not date_format:
        raise ERROR_INVALID_PARAMETER_TYPE(key="aggregate.group.keys.date_format", type="str")
    if not DATE_FORMAT.fullmatch(date_format):
        raise ERROR_INVALID_PARAMETER(
            key="aggregate.group.keys.date_format",
            reason=f"'{date_format}': {', '.join(DATE_PARTS)}, or a format of at most 64 parts, each one of "
            f"{' '.join('%' + one for one in DATE_SPECIFIERS)} or a letter, digit, space or one of . _ : / , -",
        )
    if date_format in DATE_PARTS:
        return {DATE_PARTS[date_format]: f"${path}"}
    return {"$dateToString": {"format": date_format, "date": f"${path}"}}


def _accumulator(spec: Spelled, shape: _Shape) -> dict[str, Any]:
    operator = spec.get("operator")
    if not isinstance(operator, str) or operator not in GROUP_OPERATORS:
        raise ERROR_DB_QUERY(
            reason="'aggregate.group.fields' operator is not supported. "
            f"(supported_operator = {', '.join(GROUP_OPERATORS)})"
        )
    mongo = GROUP_OPERATORS[operator]
    conditions = spec.item.get("conditions")
    if conditions is not None and operator not in CONDITIONAL_GROUP_OPERATORS:
        raise ERROR_DB_QUERY(reason=f"'aggregate.group.fields' {operator} does not take conditions")
    items = list_param(conditions, "aggregate.group.fields.conditions")
    when = _conditions(items, shape) if items else None
    if spec.item.get("fields") is not None and operator != "push":
        raise ERROR_DB_QUERY(reason=f"'aggregate.group.fields' {operator} does not take fields (push does)")
    sub_fields = list_param(spec.item.get("fields"), "aggregate.group.fields.fields")
    key = spec.get("key")
    if operator == "count":
        if key is not None:  # counted rows need no key; one sent is still checked
            shape.ref(key, "aggregate.group.fields.key")
        return {mongo: {"$cond": [when, 1, 0]} if when else 1}
    if operator == "push" and sub_fields:
        if key is not None:
            raise ERROR_DB_QUERY(reason="'aggregate.group.fields' push takes a key or fields, not both")
        pushed = {}
        for sub_field in sub_fields:
            sub = _spec(sub_field, _KEYED, "aggregate.group.fields.fields")
            name = _name(sub, "aggregate.group.fields.fields")
            pushed[name] = shape.expression(
                _key(sub, "aggregate.group.fields.fields"), "aggregate.group.fields.fields.key"
            )
        return {mongo: pushed}
    value = shape.expression(_key(spec, "aggregate.group.fields"), "aggregate.group.fields.key")
    return {mongo: {"$cond": [when, value, 0]} if when else value}


def _conditions(conditions: list[Any], shape: _Shape) -> dict[str, Any]:
    where = "aggregate.group.fields.conditions"
    clauses = []
    for condition in conditions:
        spec = _spec(condition, CONDITION_NAMES, where)
        key, operator, value = spec.get("key"), spec.get("operator"), spec.get("value")
        if key is None or operator is None or not spec.has("value"):
            raise ERROR_DB_QUERY(
                reason=f"'aggregate.group.fields.conditions' requires key, value and operator: {spec.item}"
            )
        if not isinstance(operator, str) or operator not in GROUP_CONDITION_OPERATORS:
            raise ERROR_DB_QUERY(
                reason="'aggregate.group.fields.conditions' operator is not supported. "
                f"(supported_operator = {', '.join(GROUP_CONDITION_OPERATORS)})"
            )
        path, is_datetime = shape.ref(key, "aggregate.group.fields.conditions.key")
        if is_datetime and isinstance(value, str):
            value = parse_iso8601(value, "aggregate.group.fields.conditions.value")
        clauses.append({GROUP_CONDITION_OPERATORS[operator]: [f"${path}", {"$literal": value}]})
    return {"$and": clauses}


def _count(options: Any, shape: _Shape) -> dict[str, Any]:
    options = _dict(options, "aggregate.count")
    if "name" not in options:  # only "name": an "n" here is one more option, ignored
        raise ERROR_REQUIRED_PARAMETER(key="aggregate.count.name")
    name = _name_value(options["name"], options, "aggregate.count")
    shape.names, shape.group_keys = {name}, set()
    return {"$count": name}


def _sort(options: Any, shape: _Shape) -> dict[str, Any]:
    pairs = sort_spec(options, shape.ref, "aggregate.sort")
    if not pairs:
        raise ERROR_REQUIRED_PARAMETER(key="aggregate.sort.key")
    return {"$sort": dict(pairs)}


def _project(options: Any, shape: _Shape) -> dict[str, Any]:
    options = _dict(options, "aggregate.project")
    fields = list_param(options.get("fields"), "aggregate.project.fields")
    if not fields:
        raise ERROR_REQUIRED_PARAMETER(key="aggregate.project.fields")
    exclude_keys = options.get("exclude_keys", False)
    if not isinstance(exclude_keys, bool):
        raise ERROR_INVALID_PARAMETER_TYPE(key="aggregate.project.exclude_keys", type="bool")
    projected: dict[str, Any] = {}
    names = []
    for item in fields:
        spec = _spec(item, _PROJECT_FIELD, "aggregate.project.fields")
        names.append(_name(spec, "aggregate.project.fields"))
        projected[names[-1]] = _projection(spec, shape)
    _distinct_names(names, "aggregate.project")
    kept_keys = set() if exclude_keys else set(shape.group_keys)
    if exclude_keys:
        projected["_id"] = 0
    shape.names = (set(projected) - {"_id"}) | kept_keys
    shape.group_keys = kept_keys
    return {"$project": projected}


def _projection(spec: Spelled, shape: _Shape) -> Any:
    # A key as is, an operator over a key, or a calculation over fields: never a key and fields.
    where = "aggregate.project.fields"
    operator, operands = spec.get("operator"), spec.get("fields")
    if operator is not None and (not isinstance(operator, str) or operator not in PROJECT_OPERATORS):
        raise ERROR_DB_QUERY(
            reason="'aggregate.project.fields' operator is not supported. "
            f"(supported_operator = {', '.join(PROJECT_OPERATORS)})"
        )
    if operator in CALCULATIONS:
        if spec.get("key") is not None:
            raise ERROR_DB_QUERY(
                reason=f"'aggregate.project.fields' {operator} takes fields, not a key: {spec.item}")
        return _calculation(spec, operator, shape, depth=0)
    if operands is not None:
        raise ERROR_DB_QUERY(
            reason=f"'aggregate.project.fields' takes fields only with {', '.join(CALCULATIONS)}: {spec.item}"
        )
    if operator is None:
        return shape.expression(_key(spec, where), "aggregate.project.fields.key")
    key = _key(spec, "aggregate.project.fields")
    return {PROJECT_OPERATORS[operator]: shape.expression(key, "aggregate.project.fields.key")}


def _calculation(spec: Spelled, operator: Any, shape: _Shape, depth: int) -> dict[str, Any]:
    if not isinstance(operator, str) or operator not in CALCULATIONS:
        raise ERROR_DB_QUERY(
            reason=f"'aggregate.project.fields' operator must be one of {', '.join(CALCULATIONS)}"
        )
    operands = spec.get("fields")
    if not isinstance(operands, list) or not operands:
        raise ERROR_DB_QUERY(
            reason=f"'aggregate.project.fields' {operator} requires fields: {spec.item}"
        )
    if operator in ("subtract", "divide") and len(operands) != 2:
        raise ERROR_DB_QUERY(
            reason=f"'aggregate.project.fields' {operator} requires two fields: {spec.item}"
        )
    if depth > 8:
        raise ERROR_INVALID_PARAMETER(
            key="aggregate.project.fields", reason="calculations nest too deep"
        )
    expressions: list[Any] = []
    for operand in operands:
        if isinstance(operand, str):
            expressions.append(shape.expression(operand, "aggregate.project.fields.fields"))
        elif isinstance(operand, (int, float)) and not isinstance(operand, bool):
            expressions.append(operand)
        elif isinstance(operand, dict):
            nested = _spec(operand, _CALCULATION, "aggregate.project.fields.fields")
            expressions.append(_calculation(nested, nested.get("operator"), shape, depth + 1))
        else:
            raise ERROR_DB_QUERY(
                reason="'aggregate.project.fields' operands are keys, numbers or objects"
            )
    return {PROJECT_OPERATORS[operator]: expressions}


def _limit(options: Any, _shape: _Shape) -> dict[str, Any]:
    return {"$limit": int32(options, "aggregate.limit", 1)}


def _skip(options: Any, _shape: _Shape) -> dict[str, Any]:
    return {"$skip": int32(options, "aggregate.skip", 0)}


def _match(options: Any, shape: _Shape) -> dict[str, Any]:
    options = _dict(options, "aggregate.match")
    clauses = [
        build_condition(item, shape.ref, shape.now, "aggregate.match.filter")
        for item in list_param(options.get("filter"), "aggregate.match.filter")
    ]
    return {"$match": {"$and": clauses} if clauses else {}}


# Each stage's options model (its name is in STAGES) -> its translation.
_TRANSLATIONS = {
    Unwind: _unwind,
    Group: _group,
    Count: _count,
    Sort: _sort,
    Project: _project,
    Limit: _limit,
    Skip: _skip,
    Match: _match,
}


def aggregate_stages(aggregate: Any, stored: KeyResolver, now: datetime) -> list[dict[str, Any]]:
    """The ``aggregate`` list as MongoDB stages, each checked against the shape before it.

    Before the first group, project or count, keys resolve with ``stored``
    (the resource's fields); after it, to the names those stages produced.
    """
    if not isinstance(aggregate, list):
        raise ERROR_INVALID_PARAMETER_TYPE(key="aggregate", type="list")
    shape = _Shape(stored, now)
    stages = []
    for stage in aggregate:
        stage = _dict(stage, "aggregate")
        kinds = [kind for kind in STAGES if kind in stage]
        if not kinds:
            raise ERROR_REQUIRED_PARAMETER(key="aggregate." + " or aggregate.".join(STAGES))
        if len(kinds) > 1 or len(stage) > 1:
            raise ERROR_INVALID_PARAMETER(
                key="aggregate", reason="each stage has exactly one of " + ", ".join(STAGES)
            )
        kind = kinds[0]
        stages.append(_TRANSLATIONS[STAGES[kind]](stage[kind], shape))
    return stages


def plan_stat(resource: Resource, body: Any, scope: Scope, max_page_size: int, now: datetime) -> StatPlan:
    """A stat request as a scoped aggregation (or distinct), paged like SpaceONE's."""
    request = parse(request_models(resource).stat, body)
    query = request.query  # with aggregate stages or a distinct key
    stored = field_ref(resource)
    clauses = (param_clauses(request, resource.param_filters, resource.id_field)
               + user_clauses(resource, query, stored, now))
    skip, limit, paged = page_window(query.page, max_page_size)
    match = scoped_filter(scope, clauses)
    # A distinct key is checked even beside aggregate stages, which then decide the answer.
    distinct = None if query.distinct is None else field_path(resource, query.distinct, "query.distinct")
    stages = [] if query.aggregate is None else aggregate_stages(query.aggregate, stored, now)
    if stages:
        return StatPlan(match, stages, None, skip, limit, paged)
    return StatPlan(match, [], distinct, skip, limit, paged)
