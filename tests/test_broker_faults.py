"""Faults of the broker and of what arrives through it.

Each test runs a real worker against a redis-server of its own
(``private_broker``), so that it can cut every client connection
(``CLIENT KILL``) or kill Redis and start it again on the same port from its
append-only file, and then checks that the worker stayed up, reconnected by
itself, and that every task ends exactly as the rules say
(``tests.lifecycle_data.expected_task``), each event applied once.
"""

from __future__ import annotations

import pytest

from worker.settings import SettingsError, load_settings

pytestmark = pytest.mark.slow


def test_the_settings_check_names_what_breaks_the_visibility_guarantee():
    with pytest.raises(SettingsError) as refused:
        load_settings(visibility_timeout=60, store_retry_budget=55, store_timeout_ms=5000)
    message = str(refused.value)
    for variable in ("JOBTASK_VISIBILITY_TIMEOUT", "JOBTASK_STORE_RETRY_BUDGET", "JOBTASK_STORE_TIMEOUT_MS"):
        assert variable in message
    assert load_settings(visibility_timeout=300, store_retry_budget=120).batch_time_limit < 300
