"""How store errors are classified: real pymongo exception objects, every path alike."""

from __future__ import annotations

import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    WriteConcernError,
    WTimeoutError,
)

from worker.store.retry import (
    Backoff,
    StoreUnavailable,
    WriteNotDurable,
    check_bulk_errors,
    is_transient,
    retry_transient,
)


def bulk_error(write_errors=(), concern_errors=()) -> BulkWriteError:
    return BulkWriteError({
        "writeErrors": [dict(error) for error in write_errors],
        "writeConcernErrors": [dict(error) for error in concern_errors],
        "nInserted": 0, "nUpserted": 0, "nMatched": 0, "nModified": 0, "nRemoved": 0,
        "upserted": [],
    })


STEPDOWN = {"index": 0, "code": 11602, "errmsg": "operation was interrupted"}
DUPLICATE = {"index": 1, "code": 11000, "errmsg": "E11000 duplicate key error"}
TOO_LARGE = {"index": 0, "code": 10334, "errmsg": "document too large"}
NOT_MAJORITY = {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out"}


@pytest.mark.parametrize("exc", [
    AutoReconnect("connection closed"),
    NetworkTimeout("timed out"),
    NotPrimaryError("not primary", {"code": 10107}),
    WTimeoutError("waiting for replication timed out", 64, {}),
    WriteConcernError("waiting for replication timed out", 64, {}),
    OperationFailure("interrupted", 11602),
    OperationFailure("shutting down", 91),
    OperationFailure("whatever", 1, {"errorLabels": ["RetryableWriteError"]}),
    bulk_error([STEPDOWN]),
    bulk_error([DUPLICATE, {**STEPDOWN, "code": 189}]),
    bulk_error(concern_errors=[NOT_MAJORITY]),
    bulk_error([DUPLICATE], [NOT_MAJORITY]),
    WriteNotDurable("concern not met"),
], ids=lambda exc: type(exc).__name__)
def test_passing_faults_are_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    DuplicateKeyError("E11000", 11000),
    OperationFailure("bad query", 2),
    bulk_error([DUPLICATE]),
    bulk_error([TOO_LARGE]),
    ValueError("a bug"),
], ids=lambda exc: type(exc).__name__)
def test_wrong_input_and_bugs_are_not_transient(exc):
    assert not is_transient(exc)


def test_a_bulk_with_only_expected_errors_returns_them():
    assert check_bulk_errors(bulk_error([DUPLICATE]), tolerated={11000}) == [DUPLICATE]


def test_a_bulk_whose_concern_failed_is_not_done_even_with_expected_errors():
    with pytest.raises(WriteNotDurable):
        check_bulk_errors(bulk_error([DUPLICATE], [NOT_MAJORITY]), tolerated={11000})


def test_a_bulk_with_a_transient_error_inside_is_retried_not_refused():
    with pytest.raises(WriteNotDurable):
        check_bulk_errors(bulk_error([DUPLICATE, STEPDOWN]), tolerated={11000})


def test_a_bulk_with_an_unexpected_error_raises_it():
    error = bulk_error([TOO_LARGE])
    with pytest.raises(BulkWriteError) as raised:
        check_bulk_errors(error, tolerated={11000})
    assert raised.value is error


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_retries_stop_at_the_deadline_before_the_budget():
    clock, calls = Clock(), []

    def work():
        calls.append(clock.now)
        raise AutoReconnect("down")

    with pytest.raises(StoreUnavailable):
        retry_transient(work, Backoff(base=1, cap=1, budget=100), clock.sleep, clock, deadline=5)
    assert calls and max(calls) <= 5


def test_a_non_transient_error_is_not_retried():
    calls = []

    def work():
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        retry_transient(work, Backoff(), lambda _: None)
    assert calls == [1]
