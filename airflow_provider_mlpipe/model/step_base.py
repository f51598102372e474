"""The base of every step: its name, options, inputs and outputs, fan-out and definition digest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.cache import CacheConfig, check_cache_config
from airflow_provider_mlpipe.model.conditions import Condition
from airflow_provider_mlpipe.model.expressions import (
    Expression,
    StepOutput,
    iter_references,
    to_canonical,
)
from airflow_provider_mlpipe.model.step_fields import (
    STEP_NAME,
    PropertyFile,
    RetryPolicy,
    _function_file,
    check_code_files,
    check_timeout,
)


def _step_name(item: Any) -> str:
    """A step given as a step object or by name."""
    return item.name if isinstance(item, Step) else item


class Step:
    """The base of every step.

    :param name: unique in the pipeline; becomes the Airflow task id.
    :param depends_on: steps (or names) that must finish first although no output is passed.
    :param retry_policy: retries on failure (``RetryPolicy``).
    :param display_name: a label for the UI (the task's display name).
    :param description: free text, shown as the task's documentation.
    :param timeout: seconds a try may run before Airflow fails it (its ``execution_timeout``).
    :param for_each: run the step once per item of this list (a list parameter, a list output or a
        literal list): a fan-out (see :mod:`airflow_provider_mlpipe.model.fanout`).
    :param max_concurrency: with ``for_each``, how many items run at once.
    :param code_files: more files whose content is part of the step's code (files, folders or glob
        patterns, relative to the pipeline's folder): what the step reads that an ``import`` does not
        show (a module loaded by name, a config file, a SQL template).
    :param cache_config: step caching (:class:`CacheConfig`); default: the pipeline's, else off.
    """

    kind: ClassVar[str] = ""
    # The operator that runs it, when not the one of its kind (a loop's exit test is a condition step).
    operator_kind: ClassVar[str | None] = None

    def __init__(
        self,
        name: str,
        *,
        depends_on: Sequence[Step | str] | None = None,
        retry_policy: RetryPolicy | None = None,
        display_name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        for_each: Any = None,
        max_concurrency: int | None = None,
        code_files: Sequence[str] | None = None,
        cache_config: CacheConfig | None = None,
    ) -> None:
        if not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            raise SpecError(
                f"invalid step name {name!r}: use letters, digits, '_', '-', '.' (not first), at most 200",
                step=str(name),
                field="name",
            )
        self.name = name
        self.depends_on: list[str] = [_step_name(item) for item in (depends_on or [])]
        self._depends_on_steps = [item for item in (depends_on or []) if isinstance(item, Step)]
        self.retry_policy = retry_policy
        self.display_name = display_name
        self.description = description
        self.timeout = check_timeout(timeout, step=name)
        self.for_each = for_each
        self.max_concurrency = max_concurrency
        if for_each is not None or max_concurrency is not None:
            from airflow_provider_mlpipe.model.fanout import check_fan_out

            check_fan_out(self)
        self.declared_code_files = check_code_files(code_files, step=name, kind=self.kind)
        self.cache_config = check_cache_config(cache_config, step=name, kind=self.kind)
        self.base_dir: Path | None = None
        # In iteration i > 1 of a loop: the exit test of iteration i - 1, which must have said "go on".
        self.loop_gate: str | None = None

    # -- what the graph needs -------------------------------------------------------------
    def output_names(self) -> list[str]:
        """The outputs this step produces, by name."""
        return []

    def output(self, output_name: str) -> StepOutput:
        """A reference to one of this step's outputs, to pass to another step."""
        return StepOutput(self.name, output_name)

    def inputs(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(field, value)`` for every value (literal or expression) the step reads at run time."""
        return iter(())

    def all_inputs(self) -> Iterator[tuple[str, Any]]:
        """:meth:`inputs`, and the list a fan-out step runs over."""
        if self.for_each is not None:
            yield "for_each", self.for_each
        yield from self.inputs()

    def references(self) -> Iterator[tuple[str, Expression]]:
        """Yield ``(field, reference)`` for every parameter, step output or JsonGet the step reads."""
        for field_name, value in self.all_inputs():
            references = value.references() if isinstance(value, Condition) else iter_references(value)
            for reference in references:
                yield field_name, reference

    def related_steps(self) -> Iterator[Step]:
        """Step objects this step names directly (for collecting a Python pipeline's steps)."""
        yield from self._depends_on_steps
        for _, reference in self.references():
            producer = getattr(reference, "producer", None)  # a @step function's result
            if isinstance(producer, Step):
                yield producer

    def property_files(self) -> list[PropertyFile]:
        return []

    # -- fan-out (see model.fanout) ----------------------------------------------------------
    @property
    def is_fan_out(self) -> bool:
        """Whether the step runs once per item (``for_each``, or a tuning step's trials)."""
        return self.for_each is not None

    @property
    def concurrency(self) -> int | None:
        """How many items of a fan-out run at once (None: as many as Airflow allows)."""
        return self.max_concurrency

    def fan_out_items(self, evaluate: Callable[[Any], Any]) -> list[Any]:
        """The items of this run, ``for_each`` evaluated with ``evaluate``."""
        from airflow_provider_mlpipe.model.fanout import checked_items

        return checked_items(self.name, self.for_each, evaluate(self.for_each))

    def trial_output_names(self) -> list[str]:
        """What one item's run produces; the fan-out step collects each as a list."""
        return self.output_names()

    def code_files(self) -> list[Path]:
        """Files the step runs; they must exist, and their content is part of the step's digest."""
        return []

    def _script_files(self, code: str | None, function: Any) -> list[Path]:
        """``code_files`` of a step that runs a ``code`` script or a function (of a file, or not)."""
        script = code or _function_file(function)
        return [self.resolve_path(script)] if script else []

    def input_names(self) -> list[str]:
        """The names of the step's input folders (processing inputs, training channels)."""
        return []

    # -- digests --------------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        """The canonical definition, compared between runs (selective execution, caching)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "depends_on": sorted(self.depends_on),
            "retry_policy": self.retry_policy.to_dict() if self.retry_policy else None,
            **self._definition_fields(),
            # Only when set: steps written before these options existed keep their digest.
            **({"timeout": self.timeout} if self.timeout is not None else {}),
            **({"for_each": to_canonical(self.for_each)} if self.for_each is not None else {}),
            **({"max_concurrency": self.max_concurrency} if self.max_concurrency is not None else {}),
            # Only when set, so that steps written before code_files existed keep their digest.
            **({"code_files": sorted(self.declared_code_files)} if self.declared_code_files else {}),
        }

    def _definition_fields(self) -> dict[str, Any]:
        return {}

    def digest(self) -> str:
        """sha256 of the definition and of the content of every code file: the script or function
        file, the project-local modules it imports and the declared ``code_files`` (see
        :func:`airflow_provider_mlpipe.fingerprint.step_digest`)."""
        from airflow_provider_mlpipe.fingerprint import step_digest

        return step_digest(self)

    def resolve_path(self, path: str) -> Path:
        """A path relative to the pipeline's folder, as an absolute path."""
        candidate = Path(path).expanduser()
        if not candidate.is_absolute() and self.base_dir is not None:
            candidate = self.base_dir / candidate
        return candidate

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
