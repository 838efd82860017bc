"""The contract and the rules: what producers send and what it means.

``events`` is event contract v1 (the pydantic models every message is checked
against), ``lifecycle`` the JobTask rules as pure functions, ``acceptance``
which events join a task, ``schema`` the JSON Schemas written from the
models, ``changes`` the change feed's entries, ``history_keys`` how history
records are keyed. Nothing here does I/O. May import: nothing of ours but
``worker.settings``.
"""
