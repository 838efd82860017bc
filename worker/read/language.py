"""SpaceONE's query language as data: every operator a request may name, once.

The request models (``worker.read.models``) turn these tables into the
enums of ``/openapi.json``; the translation (``worker.read.conditions``,
``worker.read.stat_query``) turns the same tables into MongoDB. Stage names live
with the stage models in ``worker.read.models.STAGES``.
"""

from __future__ import annotations

import re

# Filter operator -> whether its value is a list (SpaceONE refuses the other kind).
FILTER_OPERATORS = {
    "eq": False, "not": False, "exists": False, "contain": False, "not_contain": False,
    "in": True, "not_in": True, "contain_in": True, "not_contain_in": True,
    "lt": False, "lte": False, "gt": False, "gte": False, "match": False,
    "regex": False, "regex_in": True,
    "datetime_lt": False, "datetime_lte": False, "datetime_gt": False, "datetime_gte": False,
    "timediff_lt": False, "timediff_lte": False, "timediff_gt": False, "timediff_gte": False,
}

# aggregate.group.fields operator -> MongoDB accumulator.
GROUP_OPERATORS = {
    "count": "$sum",
    "sum": "$sum",
    "average": "$avg",
    "max": "$max",
    "min": "$min",
    "first": "$first",
    "last": "$last",
    "push": "$push",
    "add_to_set": "$addToSet",
    "merge_objects": "$mergeObjects",
}
# The group operators that take ``conditions`` (counted or summed only where they hold).
CONDITIONAL_GROUP_OPERATORS = ("count", "sum", "average")

# aggregate.group.fields.conditions operator -> MongoDB comparison.
GROUP_CONDITION_OPERATORS = {
    "eq": "$eq",
    "not": "$ne",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
}

# aggregate.project.fields operator -> MongoDB expression operator.
PROJECT_OPERATORS = {
    "size": "$size",
    "sum": "$sum",
    "array_to_object": "$arrayToObject",
    "object_to_array": "$objectToArray",
    "add": "$add",
    "subtract": "$subtract",
    "multiply": "$multiply",
    "divide": "$divide",
}
# The project operators that compute over ``fields`` (keys, numbers or nested calculations).
CALCULATIONS = ("add", "subtract", "multiply", "divide")

# aggregate.group.keys.date_format shortcuts -> MongoDB date part; any other text is a $dateToString format.
DATE_PARTS = {"year": "$year", "month": "$month", "day": "$dayOfMonth"}

# Parameters a request may also spell short (SpaceONE's k, v, o, n, f). One object uses one
# spelling throughout: ``{k, v, o}`` or ``{key, value, operator}``, not a mix of the two.
SPELLINGS = {"key": "k", "value": "v", "operator": "o", "name": "n", "fields": "f"}

# Patterns are written once, for both sides: the translation matches them with Python's
# ``re.fullmatch`` and ``/openapi.json`` states them as JSON Schema (ECMA 262) patterns, so
# they use only what the two dialects read alike: no \s, \d or \w (Unicode in Python, ASCII in
# ECMA), no lookaround, and ^...$ around what must match the whole text.

# A name a group, count or project stage gives its output.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

# One segment of a dotted path after its head: not empty, no NUL, not an operator ('$...').
PATH_SEGMENT = r"[^.$\u0000][^.\u0000]*"
# A key inside an aggregate: a stored field or a path into an open one before the first
# group / project / count, a name those produced (or a path into it) after; both are this.
STAGE_KEY = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,127}}(\.{PATH_SEGMENT})*$")
# A key of an object anywhere in a body: no operator ('$...'), no NUL (BSON cannot carry it).
SAFE_KEY = re.compile(r"^([^$\u0000][^\u0000]*)?$")

# An ISO 8601 date, optionally with a time (minutes, seconds and up to 6 decimals) and an offset,
# as datetime fields are compared with: days exact for each month, February 29 in leap years only.
_YEAR = r"([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
_TIME = r"[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
ISO_DATETIME = re.compile(rf"^({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)({_TIME})?$")

# A timediff value: now, now/d, now/w (Monday), now/m, then optionally + or - a number of units;
# the number's digits are bounded per unit so that the moment stays within years 1 to 9999.
TIMEDIFF_DIGITS = {"s": 9, "m": 9, "h": 7, "d": 5, "w": 4}
_AMOUNT = "|".join(f"[0-9]{{1,{digits}}}{unit}" for unit, digits in TIMEDIFF_DIGITS.items())
TIMEDIFF = re.compile(rf"^ ?now(/[dwm])? ?([+-] ?({_AMOUNT}))? ?$")

# aggregate.group.keys.date_format: a shortcut of DATE_PARTS, or a $dateToString format of at most
# 64 parts, each one of the store's specifiers or a plain character (letters, digits, space and
# . _ : / , -). No '$': the format goes to the store as it is (secantusdb takes no expression
# there), so it must never read as a field path or variable, as '$domain_id' or '$$NOW' would.
DATE_SPECIFIERS = "bdjmuwzBGHLMSUVYZ%"
DATE_FORMAT = re.compile(rf"^(year|month|day|([A-Za-z0-9 ._:/,-]|%[{DATE_SPECIFIERS}]){{1,64}})$")

# SpaceONE's page fields and counts are int32; bigger values could not even reach BSON.
INT32 = (-(2**31), 2**31 - 1)
# Any number in a body: what a BSON int64 can hold, symmetric (beyond it a number is refused;
# -2**63 too, which JSON Schema generators cannot bound together with 2**63 - 1).
INT64 = (-(2**63 - 1), 2**63 - 1)
# How deep a body may nest objects and lists.
MAX_DEPTH = 32
