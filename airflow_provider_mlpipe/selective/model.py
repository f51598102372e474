"""The data of selective execution: the selection asked for (:class:`SelectiveExecutionConfig`), what
the planner reads (:class:`StepInfo`, :class:`ReferenceRun`), what it decides (:class:`SelectivePlan`)
and the ``selective_execution`` block of a run's conf that carries them.

Pure Python, no Airflow; the planning itself is :mod:`airflow_provider_mlpipe.selective.plan`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlpipe.cache import NO_CACHE_CONF_KEY
from airflow_provider_mlpipe.exceptions import SelectiveExecutionError
from airflow_provider_mlpipe.fingerprint import LITERAL_INPUT

# The key of ``dag_run.conf`` that holds a selective run's settings; it is not a pipeline parameter.
CONF_KEY = "selective_execution"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
# What a reused step's record says of the code and data it was computed from: the part of it that
# the selected steps check again on the worker (selective/verify.py).
FINGERPRINT_KEYS = ("digest", "code_files", "inputs", "origin_run_id")
# The XCom, on the run's outcome task (which never runs, so Airflow never clears it), that holds
# every reused step's fingerprint (SelectivePlan.fingerprints): a selected step reads them all in
# one request. Not in the conf: Airflow decodes a run's conf again with every row of the run's task
# instances and XComs it loads (the scheduler does so in each loop), so a conf that grew with the
# number of reused steps made every scheduling decision about the run slower.
FINGERPRINTS_XCOM_KEY = "mlpipe_reused_fingerprints"
# The key of the selective block that holds, for each selected step, one short digest over what the
# steps reused upstream of it were computed from (see reused_check). A selected step computes the same
# digest from its own build of the DAG: equal, nothing changed and it reads no fingerprint at all;
# different, it reads FINGERPRINTS_XCOM_KEY to say which step changed and how. Its size grows with
# the number of selected steps only.
REUSED_CHECK_KEY = "reused_check"
# The recorded keys that only the selected steps' check of their reused steps reads (describe() and
# other user-facing views leave them out). ``reused_fingerprints`` is only in the conf of runs made
# before the fingerprints moved to an XCom (see FINGERPRINTS_XCOM_KEY); such a conf is still read.
CHECK_KEYS = ("reused_fingerprints", REUSED_CHECK_KEY)
# Keys of the selective block that record what was applied (written by the provider, not by users).
RECORDED_KEYS = ("reused_steps", "reused_skipped_steps", "not_run", *CHECK_KEYS)


def reused_check(parts: Mapping[str, tuple[Any, Mapping[str, Any]]]) -> str:
    """One digest over the parts of each reused step that a selected step checks again.

    :param parts: step name -> (its digest, its literal inputs' content digests by input key).
    """
    canonical = {
        name: [digest, dict(sorted(inputs.items()))] for name, (digest, inputs) in sorted(parts.items())
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def recorded_check_parts(record: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any]] | None:
    """What a reused step's record says of the parts :func:`reused_check` covers; None for a record
    without inputs (written before fingerprints existed), which only the full check can compare."""
    inputs = record.get("inputs")
    if not isinstance(inputs, Mapping):
        return None
    literal = {
        key: item.get("digest")
        for key, item in inputs.items()
        if isinstance(item, Mapping) and item.get("kind") == LITERAL_INPUT
    }
    return record.get("digest"), literal


@dataclass(frozen=True)
class SelectiveExecutionConfig:
    """Which steps to run again, and which earlier run to take everything else from.

    Named as in SageMaker (``SelectiveExecutionConfig``); ``source_run_id`` is the Airflow run id of
    the reference execution.

    :param selected_steps: the steps to run.
    :param source_run_id: the reference run; ``None`` takes the latest finished run of the pipeline.
    :param include_between: select the steps on paths between selected steps instead of refusing.
    """

    selected_steps: tuple[str, ...]
    source_run_id: str | None = None
    include_between: bool = False

    def __init__(
        self, selected_steps: Iterable[str], source_run_id: str | None = None, include_between: bool = False
    ) -> None:
        if isinstance(selected_steps, str):
            selected_steps = [name.strip() for name in selected_steps.split(",") if name.strip()]
        object.__setattr__(self, "selected_steps", tuple(selected_steps))
        object.__setattr__(self, "source_run_id", source_run_id or None)
        object.__setattr__(self, "include_between", bool(include_between))

    def to_conf(self) -> dict[str, Any]:
        """The ``selective_execution`` block of a run's conf."""
        return {
            "selected_steps": list(self.selected_steps),
            "source_run_id": self.source_run_id,
            "include_between": self.include_between,
        }

    @classmethod
    def from_conf(cls, block: Any) -> SelectiveExecutionConfig:
        """Read the ``selective_execution`` block of a run's conf (as given to ``airflow dags trigger``)."""
        if not isinstance(block, Mapping):
            raise SelectiveExecutionError(
                f"conf.{CONF_KEY} must be a mapping with selected_steps and source_run_id, got {block!r}"
            )
        unknown = sorted(set(block) - {"selected_steps", "source_run_id", "include_between", *RECORDED_KEYS})
        if unknown:
            raise SelectiveExecutionError(f"conf.{CONF_KEY}: unknown key(s) {', '.join(unknown)}")
        steps = block.get("selected_steps")
        if isinstance(steps, str):
            steps = [name.strip() for name in steps.split(",") if name.strip()]
        if not isinstance(steps, list) or not all(isinstance(name, str) for name in steps):
            raise SelectiveExecutionError(f"conf.{CONF_KEY}.selected_steps must be a list of step names")
        source = block.get("source_run_id")
        if source is not None and not isinstance(source, str):
            raise SelectiveExecutionError(f"conf.{CONF_KEY}.source_run_id must be a run id or null")
        return cls(steps, source, bool(block.get("include_between", False)))


@dataclass(frozen=True)
class StepInfo:
    """What the planner needs to know of one step of the current pipeline definition.

    :param name: the step (task id).
    :param kind: the step kind (``training``, ``condition``...).
    :param digest: the digest of its current definition and code.
    :param upstream: the steps it directly depends on.
    :param if_steps: for a condition step, the steps of its if branch.
    :param else_steps: for a condition step, the steps of its else branch.
    :param data_upstream: the upstream steps whose outputs it reads (a step reading data from a step
        that did not run is skipped).
    :param sources: its code files and literal local inputs as the DAG processor last saw them
        (``fingerprint.sources_manifest``), to say what changed; None if the DAG does not say.
    """

    name: str
    kind: str
    digest: str
    upstream: frozenset[str] = frozenset()
    if_steps: tuple[str, ...] = ()
    else_steps: tuple[str, ...] = ()
    data_upstream: frozenset[str] = frozenset()
    sources: Mapping[str, Any] | None = field(default=None, hash=False, compare=False)


@dataclass(frozen=True)
class ReferenceStep:
    """A step as it ended in the reference run.

    :param state: the task instance state (``success``, ``failed``, ``skipped``...; None if never run).
    :param record: its XCom ``return_value``: the step record with the output references and digest.
    """

    name: str
    state: str | None
    record: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ReferenceRun:
    """The run whose outputs a selective run reuses."""

    pipeline: str
    run_id: str
    state: str
    conf: Mapping[str, Any]
    steps: Mapping[str, ReferenceStep]


@dataclass
class SelectivePlan:
    """What a selective run does with each step; applied in the transaction that creates the run.

    :param selected: the steps that run.
    :param reused: steps recorded as succeeded, with the XCom record to write (references only).
    :param reused_skipped: steps recorded as skipped because a branch skipped them in the reference
        run, each with the run where that happened (the reference run, or the run it reused them from).
    :param not_run: steps that do not run, each with the reason.
    :param parameters: the run's parameter values (the reference run's, with the overrides).
    :param reused_upstream: for each selected step, the reused steps upstream of it.
    """

    pipeline: str
    source_run_id: str
    selected: list[str]
    reused: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused_skipped: dict[str, str] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    include_between: bool = False
    no_cache: bool = False
    reused_upstream: dict[str, list[str]] = field(default_factory=dict)

    def conf(self) -> dict[str, Any]:
        """The new run's conf: its parameters and the selective block (with the reused steps)."""
        return {
            **self.parameters,
            **({NO_CACHE_CONF_KEY: True} if self.no_cache else {}),
            CONF_KEY: {
                "selected_steps": list(self.selected),
                "source_run_id": self.source_run_id,
                "include_between": self.include_between,
                "reused_steps": sorted(self.reused),
                "reused_skipped_steps": dict(sorted(self.reused_skipped.items())),
                "not_run": dict(sorted(self.not_run.items())),
                **({REUSED_CHECK_KEY: checks} if (checks := self.reused_checks()) else {}),
            },
        }

    def reused_checks(self) -> dict[str, str]:
        """For each selected step with reused steps upstream, :func:`reused_check` over them, as
        their records say (a step whose record cannot say leaves its selected steps without one)."""
        checks = {}
        for selected, names in sorted(self.reused_upstream.items()):
            parts = {name: recorded_check_parts(self.reused[name]) for name in names if name in self.reused}
            if parts and all(part is not None for part in parts.values()):
                checks[selected] = reused_check(
                    {name: part for name, part in parts.items() if part is not None}
                )
        return checks

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        """What each reused step was computed from (its code, inputs and origin run), which the
        selected steps check on the worker; stored as the XCom ``FINGERPRINTS_XCOM_KEY``."""
        return {
            name: {key: record[key] for key in FINGERPRINT_KEYS if key in record}
            for name, record in sorted(self.reused.items())
        }

    def note(self) -> str:
        """The new run's note, shown in the Airflow UI."""
        return f"Selective execution of {', '.join(self.selected)}; other steps from run {self.source_run_id}"

    def reused_note(self, step: str) -> str:
        """The note of a reused step's task instance."""
        if step in self.reused_skipped:
            origin = self.reused_skipped[step]
            where = "there" if origin == self.source_run_id else f"in run {origin}"
            return f"reused from run {self.source_run_id} (skipped {where}: its branch was not taken)"
        origin = self.reused[step].get("origin_run_id", self.source_run_id)
        if origin != self.source_run_id:
            return f"reused from run {self.source_run_id} (computed in run {origin})"
        return f"reused from run {self.source_run_id}"


def is_unapplied_selective_run(conf: Mapping[str, Any] | None) -> bool:
    """Whether a run's conf asks for selective execution that was not recorded yet.

    A run created by :func:`create_selective_run` lists its ``reused_steps``; one triggered with a
    plain conf block (``airflow dags trigger --conf``) does not until the scheduler listener applies it.
    """
    block = (conf or {}).get(CONF_KEY)
    return isinstance(block, Mapping) and "reused_steps" not in block
