"""The contract and the rules: what producers send, what it means, and what the worker answers.

``events`` is event contract v1 (the pydantic models every message is checked
against), ``delivery`` the value one delivery travels as, ``lifecycle`` the
JobTask rules as pure functions, ``acceptance`` which events join a task,
``jobs`` the Job rules, ``sweep`` which work is stale, ``outcomes`` every
outcome with its code, ``errors`` the coded errors of every face,
``changes`` the change feed's entries, ``schema`` the JSON Schemas written
from the models. Nothing here does I/O. May import: nothing of ours but
``worker.settings``.
"""
