"""One SpaceONE filter condition ``{k, v, o}`` → one MongoDB clause; no I/O.

Shared by list filters (``worker.read.query``) and aggregate ``match`` stages
(``worker.read.stat_query``), which resolve keys differently, so the key resolver
is passed in. The operators are ``worker.read.language.FILTER_OPERATORS``;
their value rules follow SpaceONE core: list operators need a list, the
others refuse one; ``contain*`` and ``regex*`` are case-insensitive;
datetime fields compare as datetimes. A ``regex*`` pattern is taken only if
it runs in linear time on the store (``worker.read.patterns``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.contract.errors import (
    ERROR_DB_QUERY,
    ERROR_INVALID_PARAMETER,
    ERROR_INVALID_PARAMETER_TYPE,
    ERROR_OPERATOR_BOOLEAN_TYPE,
    ERROR_OPERATOR_DICT_VALUE_TYPE,
    ERROR_OPERATOR_LIST_VALUE_TYPE,
    ERROR_OPERATOR_VALUE_TYPE,
)
from worker.read.fields import KeyResolver
from worker.read.language import FILTER_OPERATORS, ISO_DATETIME, SPELLINGS, TIMEDIFF
from worker.read.patterns import PatternRefused, check_pattern

# --- values -----------------------------------------------------------------------------

_EARLIEST, _LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def parse_iso8601(value: Any, where: str) -> datetime:
    """An ISO 8601 text (``ISO_DATETIME``) as an aware UTC datetime (a naive one is taken as UTC)."""
    if not isinstance(value, str):
        raise ERROR_DB_QUERY(reason=f"{where}: the value must be an ISO 8601 text.")
    if not ISO_DATETIME.fullmatch(value):
        raise ERROR_DB_QUERY(reason=f"{where}: '{value}' is not an ISO 8601 datetime.")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # within an offset of year 1 or 9999: the first or last moment there is
        return _EARLIEST if parsed.year == 1 else _LATEST


_TIMEDIFF_PARTS = re.compile(
    r"^ ?(?P<base>now(/[dwm])?) ?((?P<sign>[+-]) ?(?P<number>[0-9]+)(?P<unit>[smhdw]))? ?$"
)
_TIMEDIFF_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_timediff(value: Any, now: datetime) -> datetime:
    """``now``, ``now/d``, ``now/w`` (Monday), ``now/m`` with an optional ``+N``/``-N`` unit (``TIMEDIFF``)."""
    match = _TIMEDIFF_PARTS.fullmatch(value) if isinstance(value, str) and TIMEDIFF.fullmatch(value) else None
    if match is None:
        raise ERROR_DB_QUERY(reason=f"The value of timediff operator is invalid. (value = {value})")
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    base = {
        "now": now,
        "now/d": midnight,
        "now/w": midnight - timedelta(days=now.weekday()),
        "now/m": midnight.replace(day=1),
    }[match["base"]]
    if not match["sign"]:
        return base
    try:
        delta = timedelta(**{_TIMEDIFF_UNITS[match["unit"]]: int(match["number"])})
        return base + delta if match["sign"] == "+" else base - delta
    except OverflowError:
        raise ERROR_DB_QUERY(
            reason=f"The value of timediff operator is out of range. (value = {value})"
        ) from None


def _as_datetime_if(is_datetime: bool, value: Any, where: str) -> Any:
    # Datetime fields compare as datetimes: an ISO text becomes a BSON date.
    if is_datetime and isinstance(value, str):
        return parse_iso8601(value, where)
    return value


def _text(value: Any, operator: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ERROR_INVALID_PARAMETER_TYPE(key=f"query.filter ({operator})", type="str")
    return str(value)


def _regex(value: Any, operator: str, at: str) -> str:
    if not isinstance(value, str):
        raise ERROR_INVALID_PARAMETER_TYPE(key=f"query.filter ({operator})", type="str")
    try:
        return check_pattern(value)
    except PatternRefused as refused:
        if not refused.compiles:  # SpaceONE's own answer to a text that is no pattern at all
            raise ERROR_DB_QUERY(
                reason=f"The value of {operator} operator is not a regular expression. (value = {value})"
            ) from None
        raise ERROR_INVALID_PARAMETER(
            key=f"{at} ({operator})", reason=f"the regular expression {value!r} is refused: {refused}"
        ) from None


def _regex_in(values: list[Any], at: str) -> str:
    combined = _any_of([_regex(one, "regex_in", at) for one in values])
    if len(combined) > MAX_COMBINED_LENGTH:
        raise ERROR_INVALID_PARAMETER(
            key=f"{at} (regex_in)", reason=f"the regular expressions are refused: longer than "
            f"{MAX_COMBINED_LENGTH} characters together"
        )
    return combined


# The longest pattern a regex_in sends the store, its patterns joined (secantusdb compiles
# at most 1,000 characters); each alone is at most MAX_PATTERN_LENGTH.
MAX_COMBINED_LENGTH = 1_000


def _any_of(patterns: list[str]) -> str:
    return "|".join(f"(?:{pattern})" for pattern in patterns)


# --- conditions ---------------------------------------------------------------------------

_COMPARISONS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


class Spelled:
    """An object's parameters under the one spelling it uses (``SPELLINGS``: long, or all short)."""

    def __init__(self, item: dict[str, Any], names: tuple[str, ...], where: str) -> None:
        longs = [name for name in names if name in item]
        shorts = [SPELLINGS[name] for name in names if SPELLINGS[name] in item]
        if longs and shorts:
            raise ERROR_INVALID_PARAMETER(
                key=where, reason=f"one spelling per object: {', '.join(SPELLINGS[name] for name in names)} "
                f"or {', '.join(names)}, not {', '.join(shorts)} with {', '.join(longs)}",
            )
        self.item, self.short = item, bool(shorts)

    def has(self, name: str) -> bool:
        return (SPELLINGS[name] if self.short else name) in self.item

    def get(self, name: str) -> Any:
        return self.item.get(SPELLINGS[name] if self.short else name)


CONDITION_NAMES = ("key", "value", "operator")


def build_condition(item: Any, resolve: KeyResolver, now: datetime, where: str = "query.filter") -> dict[str, Any]:
    """One ``{k, v, o}`` item (or ``{key, value, operator}``) as a one-key MongoDB clause ``{path: condition}``."""
    if not isinstance(item, dict):
        raise ERROR_DB_QUERY(reason="Filter condition should have key, value and operator.")
    spelled = Spelled(item, CONDITION_NAMES, where)
    key, value, operator = spelled.get("key"), spelled.get("value"), spelled.get("operator")
    has_value = spelled.has("value")
    if not isinstance(operator, str) or operator not in FILTER_OPERATORS:
        raise ERROR_DB_QUERY(
            reason=f"Filter operator is not supported. (operator = {', '.join(FILTER_OPERATORS)})"
        )
    condition = {"key": key, "value": value, "operator": operator}
    if FILTER_OPERATORS[operator] and not isinstance(value, list):
        raise ERROR_OPERATOR_LIST_VALUE_TYPE(operator=operator, condition=condition)
    if not FILTER_OPERATORS[operator] and isinstance(value, list):
        raise ERROR_OPERATOR_VALUE_TYPE(operator=operator, condition=condition)
    if key is None or key == "" or not has_value:
        raise ERROR_DB_QUERY(reason="Filter condition should have key, value and operator.")
    path, is_datetime = resolve(key, f"{where}.k")
    return {path: _condition(operator, value, is_datetime, now, condition, where)}


def _condition(operator: str, value: Any, is_datetime: bool, now: datetime, condition: dict[str, Any],
               at: str) -> Any:
    where = f"{at}: {condition['key']} ({operator})"
    if operator == "eq":
        return {"$eq": _as_datetime_if(is_datetime, value, where)}
    if operator == "not":
        return {"$ne": _as_datetime_if(is_datetime, value, where)}
    if operator in _COMPARISONS:
        return {_COMPARISONS[operator]: _as_datetime_if(is_datetime, value, where)}
    if operator == "exists":
        if not isinstance(value, bool):
            raise ERROR_OPERATOR_BOOLEAN_TYPE(operator=operator, condition=condition)
        return {"$exists": value}
    if operator in ("in", "not_in"):
        values = [_as_datetime_if(is_datetime, one, where) for one in value]
        return {"$in" if operator == "in" else "$nin": values}
    if operator in ("contain", "not_contain"):
        pattern = {"$regex": re.escape(_text(value, operator)), "$options": "i"}
        return pattern if operator == "contain" else {"$not": pattern}
    if operator in ("contain_in", "not_contain_in"):
        if not value:  # contains one of nothing: never; contains none of nothing: always
            return {"$in": []} if operator == "contain_in" else {"$nin": []}
        texts = [re.escape(_text(one, operator)) for one in value]
        pattern = {"$regex": _any_of(texts), "$options": "i"}
        return pattern if operator == "contain_in" else {"$not": pattern}
    if operator == "match":
        if not isinstance(value, dict):
            raise ERROR_OPERATOR_DICT_VALUE_TYPE(operator=operator, condition=condition)
        return {"$elemMatch": value}
    if operator == "regex":
        return {"$regex": _regex(value, operator, at), "$options": "i"}
    if operator == "regex_in":
        if not value:
            return {"$in": []}
        return {"$regex": _regex_in(value, at), "$options": "i"}
    comparison = _COMPARISONS[operator.split("_", 1)[1]]
    if operator.startswith("datetime_"):
        return {comparison: parse_iso8601(value, f"The value of {operator} operator")}
    return {comparison: parse_timediff(value, now)}
