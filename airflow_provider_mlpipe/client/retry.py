"""Retrying REST calls that failed in a way that may pass: a 5xx answer or a lost connection.

Airflow's api-server answers ``HTTP 500 {"reason": "Database error"}`` when its database is busy
(SQLite's "database is locked" when many runs are started at once), and a connection can drop after
a request was sent. Such a failure says nothing about the request itself, so the same request is
sent again after a pause that grows (exponential backoff) and varies (jitter, so that processes that
failed together do not retry together), up to a bound in attempts and in time.

Only requests that are safe to repeat are retried: reads, and starts that carry a client-chosen run
id (a repeated start finds the run the first one created instead of creating a second; see
:mod:`airflow_provider_mlpipe.client.rest`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from airflow_provider_mlpipe.exceptions import ApiRetriesExhaustedError, TransientApiError

T = TypeVar("T")


@dataclass(frozen=True)
class ApiRetryPolicy:
    """How many times, and for how long, a request that failed transiently is sent again.

    The pause before retry ``n`` (1, 2, ...) is drawn between half and all of
    ``min(max_delay, initial_delay * 2 ** (n - 1))``; no retry starts after ``max_total_seconds``
    since the first attempt.

    :param max_attempts: attempts in all, the first included (1: never retry).
    :param initial_delay: seconds before the first retry (before jitter).
    :param max_delay: the longest pause between two attempts.
    :param max_total_seconds: no new attempt after this many seconds since the first one.
    """

    max_attempts: int = 8
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_total_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_total_seconds < 0:
            raise ValueError("retry delays and bounds cannot be negative")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """The pause before retry number ``retry`` (1 for the first retry), jitter included."""
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (retry - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)

    def describe(self) -> str:
        """The bounds in words, for error messages."""
        return f"up to {self.max_attempts} attempts within {self.max_total_seconds:g} s"


NO_RETRY = ApiRetryPolicy(max_attempts=1)


def call_with_retries(
    what: str,
    attempt: Callable[[int], T],
    policy: ApiRetryPolicy,
    *,
    giving_up: Callable[[list[str]], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``attempt(n)`` (n = 1, 2, ...) until it returns, retrying on :class:`TransientApiError`.

    Any other exception ends the retries at once: it says something about the request itself.

    :param what: what is being done, for the error message (``start pipeline 'abalone'``).
    :param attempt: one attempt; it gets the attempt number.
    :param policy: the bounds.
    :param giving_up: builds the end of the final error message from the failures seen (e.g. to
        say whether a run may have been created); default: nothing more.
    :param sleep: how to pause; :param clock: what time it is (both replaceable in tests).
    :raises ApiRetriesExhaustedError: every attempt failed transiently, or time ran out.
    """
    started = clock()
    failures: list[str] = []
    for number in range(1, policy.max_attempts + 1):
        try:
            return attempt(number)
        except TransientApiError as error:
            failures.append(str(error))
        if number == policy.max_attempts:
            break
        pause = policy.delay(number)
        if clock() - started + pause > policy.max_total_seconds:
            break
        sleep(pause)
    elapsed = clock() - started
    tail = giving_up(failures) if giving_up is not None else ""
    raise ApiRetriesExhaustedError(
        f"cannot {what}: {len(failures)} attempt(s) over {elapsed:.0f} s failed ({policy.describe()}); "
        f"the last: {failures[-1]}" + (f". {tail}" if tail else "")
    )
