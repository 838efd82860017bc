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

# A name a group, count or project stage gives its output.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")

# SpaceONE's page fields and counts are int32; bigger values could not even reach BSON.
INT32 = (-(2**31), 2**31 - 1)
