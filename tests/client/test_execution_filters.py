"""``list_executions(status=..., since=..., limit=...)`` in local mode, and the filters' own checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_mlpipe.client.filters import ExecutionFilterError, checked_since, checked_statuses
from airflow_provider_mlpipe.model import (
    ConditionEquals,
    ConditionStep,
    FailStep,
    FunctionStep,
    ParameterBoolean,
    Pipeline,
)


def test_filter_values_are_checked():
    assert checked_statuses("success,failed") == ["success", "failed"]
    with pytest.raises(ExecutionFilterError, match="unknown execution status 'done'"):
        checked_statuses(["done"])
    now = datetime(2026, 1, 31, 12, tzinfo=timezone.utc)
    assert checked_since("12h", now=now) == now - timedelta(hours=12)
    assert checked_since("2026-01-30") == datetime(2026, 1, 30, tzinfo=timezone.utc)
    with pytest.raises(ExecutionFilterError, match="a time ago"):
        checked_since("yesterday")


@pytest.mark.usefixtures("airflow_home")
def test_local_executions_filtered_by_status_since_and_limit():
    from airflow_provider_mlpipe.client.local import LocalSession

    fail = ParameterBoolean("Fail", False)
    gate = ConditionStep(
        "Gate",
        conditions=[ConditionEquals(fail, True)],
        if_steps=[FailStep("Stop", error_message="asked to fail")],
        else_steps=[FunctionStep("Work", function="json:dumps", arguments={"obj": 1})],
    )
    pipeline = Pipeline("filtered", parameters=[fail], steps=[gate])
    session = LocalSession()
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    ran = [pipeline.start({"Fail": value}, session=session).execution_id for value in (False, True, False)]
    listed = lambda **filters: [e.execution_id for e in pipeline.list_executions(session=session, **filters)]  # noqa: E731
    assert listed() == ran[::-1]
    assert listed(status="failed") == [ran[1]]
    assert listed(status=["success"], limit=1) == [ran[2]]
    assert listed(since=before) == ran[::-1]
    assert listed(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    with pytest.raises(ExecutionFilterError, match="limit must be an integer from 1 to 1000"):
        pipeline.list_executions(session=session, limit=0)
