"""The REST client against a real HTTP server on 127.0.0.1 that fails on command: starts are retried
without ever making a second run, reads are retried, a client that keeps failing gives up saying what
it tried, and tokens are renewed when they expire."""

from __future__ import annotations

import re
import time

import pytest

from airflow_provider_mlpipe import SelectiveExecutionConfig
from airflow_provider_mlpipe.client.http import token_expiry
from airflow_provider_mlpipe.client.rest import AirflowSession
from airflow_provider_mlpipe.client.retry import ApiRetryPolicy, call_with_retries
from airflow_provider_mlpipe.exceptions import (
    ApiAuthenticationError,
    ApiConflictError,
    ApiRetriesExhaustedError,
    ExecutionNotFoundError,
    TransientApiError,
)
from tests.client.fake_api_server import RUN, SELECTIVE, TRIGGER, fake_api_server, jwt_shaped

# Short pauses: the behaviour under test is what is sent, not how long it waits.
QUICK = ApiRetryPolicy(max_attempts=6, initial_delay=0.01, max_delay=0.05, max_total_seconds=30)


def test_a_start_refused_with_database_errors_is_retried_and_makes_one_run() -> None:
    with fake_api_server() as (url, state):
        state.fail_next["trigger"] = 3
        run_id = AirflowSession(url, retry_policy=QUICK).start("abalone", parameters={"MaxDepth": 8})
        posts = state.bodies("POST", TRIGGER)
    assert len(posts) == 4, "three refusals, then the run"
    assert {body["dag_run_id"] for body in posts} == {run_id}, "every attempt asks for the same run id"
    assert list(state.runs) == [("abalone", run_id)]
    assert state.runs[("abalone", run_id)]["conf"] == {"MaxDepth": 8}


def test_a_start_whose_answer_is_lost_after_the_run_was_made_is_not_duplicated() -> None:
    with fake_api_server() as (url, state):
        state.drop_after_create.add("trigger")
        run_id = AirflowSession(url, retry_policy=QUICK).start("abalone", parameters={"MaxDepth": 3})
        posts = state.bodies("POST", TRIGGER)
        reads = state.bodies("GET", RUN)
    assert len(posts) == 2, "the start is sent again after the dropped connection"
    assert len(reads) == 1, "the refused second start looks at the run the first one made"
    assert list(state.runs) == [("abalone", run_id)], "one run, not two"


def test_a_selective_start_whose_answer_is_lost_is_not_duplicated() -> None:
    with fake_api_server() as (url, state):
        state.drop_after_create.add("selective")
        state.fail_next["selective"] = 1
        run_id = AirflowSession(url, retry_policy=QUICK).start(
            "abalone", selective_execution_config=SelectiveExecutionConfig(["Train"]), run_id="grid-7"
        )
        posts = state.bodies("POST", SELECTIVE)
    assert run_id == "grid-7"
    assert [body["run_id"] for body in posts] == ["grid-7"] * 3
    assert list(state.runs) == [("abalone", "grid-7")]


def test_a_start_that_keeps_failing_gives_up_naming_the_pipeline_the_run_id_and_the_attempts() -> None:
    policy = ApiRetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02, max_total_seconds=30)
    with fake_api_server() as (url, state):
        state.fail_next["trigger"] = 100
        with pytest.raises(ApiRetriesExhaustedError) as raised:
            AirflowSession(url, retry_policy=policy).start("abalone", run_id="grid-1")
        posts = state.bodies("POST", TRIGGER)
    message = str(raised.value)
    assert len(posts) == 3
    assert "start pipeline 'abalone' as run grid-1" in message
    assert "3 attempt(s)" in message and "up to 3 attempts" in message
    assert "HTTP 500: Database error" in message
    assert "mlpipe executions describe abalone grid-1" in message
    assert not state.runs


def test_a_run_id_used_by_another_request_is_an_error_not_that_run() -> None:
    with fake_api_server() as (url, state):
        session = AirflowSession(url, retry_policy=QUICK)
        session.start("abalone", parameters={"MaxDepth": 3}, run_id="grid-2")
        assert session.start("abalone", parameters={"MaxDepth": 3}, run_id="grid-2") == "grid-2"
        with pytest.raises(ApiConflictError, match="already has a run grid-2 started with other parameters"):
            session.start("abalone", parameters={"MaxDepth": 4}, run_id="grid-2")
    assert list(state.runs) == [("abalone", "grid-2")]


def test_reads_are_retried_and_refusals_are_not() -> None:
    with fake_api_server() as (url, state):
        session = AirflowSession(url, retry_policy=QUICK)
        run_id = session.start("abalone", run_id="grid-3")
        state.fail_next["read"] = 2
        assert session.describe("abalone", run_id).status == "queued"
        assert len(state.bodies("GET", RUN)) == 3
        with pytest.raises(ExecutionNotFoundError, match="not found"):
            session.describe("abalone", "no-such-run")
        assert len(state.bodies("GET", RUN)) == 4, "a 404 is an answer: not sent again"


def test_an_expired_token_is_renewed_with_the_credentials() -> None:
    with fake_api_server() as (url, state):
        session = AirflowSession(url, username="ada", password="pw", retry_policy=QUICK)
        run_id = session.start("abalone", run_id="grid-4")
        first = state.issued[-1]
        state.rejected_tokens.add(first)  # what the api-server does once the token's time is up
        assert session.describe("abalone", run_id).execution_id == run_id
        assert len(state.issued) == 2 and state.issued[-1] != first
        logins = state.bodies("POST", re.compile("^/auth/token$"))
    assert logins == [{"username": "ada", "password": "pw"}] * 2


def test_a_token_about_to_expire_is_renewed_before_it_is_refused() -> None:
    with fake_api_server() as (url, state):
        state.token_lifetime = 1  # renewed at 80 % of its life: before the second call
        session = AirflowSession(url, username="ada", password="pw", retry_policy=QUICK)
        session.start("abalone", run_id="grid-5")
        time.sleep(1)  # the token's whole life: any renewal time has passed
        session.describe("abalone", "grid-5")
        reads = state.bodies("GET", RUN)
    assert len(state.issued) == 2, "the second call logged in again before sending"
    assert len(reads) == 1, "and was not refused first"


def test_a_fixed_token_that_expired_says_how_to_get_renewable_credentials() -> None:
    with fake_api_server() as (url, state):
        token = jwt_shaped("someone", time.time() + 3600)
        state.issued.append(token)
        state.rejected_tokens.add(token)
        with pytest.raises(ApiAuthenticationError, match="MLPIPE_API_USERNAME and MLPIPE_API_PASSWORD"):
            AirflowSession(url, token=token, retry_policy=QUICK).describe("abalone", "x")


def test_token_expiry_is_read_from_the_jwt_payload() -> None:
    assert token_expiry(jwt_shaped("x", 1234567890)) == 1234567890
    assert token_expiry("not a jwt") is None


def test_the_pause_between_attempts_grows_varies_and_is_bounded() -> None:
    policy = ApiRetryPolicy(max_attempts=10, initial_delay=1.0, max_delay=8.0)
    pauses = {retry: [policy.delay(retry) for _ in range(50)] for retry in (1, 2, 3, 4, 6)}
    assert all(0.5 <= pause <= 1.0 for pause in pauses[1])
    assert all(2.0 <= pause <= 4.0 for pause in pauses[3])
    assert all(4.0 <= pause <= 8.0 for pause in pauses[6]), "capped at max_delay"
    assert len(set(pauses[2])) > 1, "jitter: processes that failed together do not retry together"


def test_retries_stop_at_the_time_bound() -> None:
    slept: list[float] = []
    policy = ApiRetryPolicy(max_attempts=100, initial_delay=4.0, max_delay=4.0, max_total_seconds=10)

    def always_failing(_number: int) -> None:
        raise TransientApiError("HTTP 503")

    with pytest.raises(ApiRetriesExhaustedError, match="HTTP 503") as raised:
        call_with_retries("read", always_failing, policy, sleep=slept.append, clock=lambda: sum(slept))
    assert sum(slept) <= 10 and 2 <= len(slept) <= 5, "pauses of 2 to 4 s within 10 s"
    assert f"{len(slept) + 1} attempt(s)" in str(raised.value)
