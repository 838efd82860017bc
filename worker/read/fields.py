"""The fields a query may name, and the guard every request body passes.

Keys are a resource's public field names or dotted paths into its open
fields (``options``), nothing else; a ``$`` key anywhere in a body, an
internal ``_`` field, or data BSON cannot carry (lone surrogates, NUL in
keys, numbers beyond a 64-bit integer, nesting deeper than ``MAX_DEPTH``)
is refused here with a coded 400, before anything is built for MongoDB.
``/openapi.json`` says the same (``worker.read.models.Value``): keys match
``SAFE_KEY``, numbers lie in ``INT64``; only the depth and the surrogates
are beyond what JSON Schema can say, and are in its descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.contract.errors import ERROR_INVALID_PARAMETER, ERROR_INVALID_PARAMETER_TYPE
from worker.read.language import INT64, MAX_DEPTH
from worker.read.resource import Resource

__all__ = ["INT64", "MAX_DEPTH", "KeyResolver", "check_body", "field_path", "field_ref"]

# --- the whole body: no operators, nothing BSON cannot carry ---------------------------


def check_body(body: Any, where: str = "body") -> dict[str, Any]:
    """Refuse a body that is not an object, or that hides an operator or unencodable data."""
    if not isinstance(body, dict):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="object")
    _walk(body, where, 0)
    return body


def _walk(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ERROR_INVALID_PARAMETER(key=where, reason=f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="object with string keys")
            _check_text(key, where)
            if key.startswith("$"):
                raise ERROR_INVALID_PARAMETER(
                    key=f"{where}.{key}", reason="MongoDB operators ('$...') are not allowed"
                )
            if "\x00" in key:
                raise ERROR_INVALID_PARAMETER(key=where, reason="a key contains a NUL character")
            _walk(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            _walk(item, where, depth + 1)
    elif isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        # Also NaN and the infinities, which JSON has no word for.
        raise ERROR_INVALID_PARAMETER(key=where, reason="number out of the 64-bit integer range")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ERROR_INVALID_PARAMETER(key=where, reason="text is not valid UTF-8") from None


# --- keys -------------------------------------------------------------------------------

KeyResolver = Callable[[Any, str], tuple[str, bool]]


def field_path(resource: Resource, key: Any, where: str) -> str:
    """A field name of ``resource`` or a dotted path into an open field; anything else is refused."""
    if not isinstance(key, str):
        raise ERROR_INVALID_PARAMETER_TYPE(key=where, type="str")
    segments = key.split(".")
    if any(not segment for segment in segments) or "\x00" in key:
        raise ERROR_INVALID_PARAMETER(key=where, reason=f"'{key}' is not a field path")
    if any(segment.startswith("$") for segment in segments):
        raise ERROR_INVALID_PARAMETER(
            key=where, reason=f"'{key}': MongoDB operators ('$...') are not allowed"
        )
    head = segments[0]
    if head not in resource.fields or (len(segments) > 1 and head not in resource.open_fields):
        paths = "".join(f", or {name}.<path>" for name in sorted(resource.open_fields))
        raise ERROR_INVALID_PARAMETER(
            key=where,
            reason=f"'{key}' is not a {resource.name} field "
            f"(use one of {', '.join(resource.fields)}{paths})",
        )
    return key


def field_ref(resource: Resource) -> KeyResolver:
    """Resolve keys against ``resource``'s stored documents: (MongoDB path, compares as datetime)."""
    datetime_fields = resource.datetime_fields

    def ref(key: Any, where: str) -> tuple[str, bool]:
        path = field_path(resource, key, where)
        return path, path in datetime_fields

    return ref
