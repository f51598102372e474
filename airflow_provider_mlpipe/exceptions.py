"""Named exceptions of the provider. Each carries where the problem is: file, step, field, line."""

from __future__ import annotations


class MlpipeError(Exception):
    """Base class of every error raised by airflow-provider-mlpipe."""


class SpecError(MlpipeError):
    """A pipeline definition is wrong. The message names the file, the step, the field and the line."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        step: str | None = None,
        field: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.reason = message
        self.file = file
        self.step = step
        self.field = field
        self.line = line
        self.column = column if line else None
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            position = f":{self.line}" if self.line else ""
            position += f":{self.column}" if self.column else ""
            where.append(f"{self.file}{position}")
        if self.step:
            where.append(f"step '{self.step}'")
        if self.field:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def located(self, *, file: str | None = None, line: int | None = None) -> SpecError:
        """Return a copy that also names ``file`` (and ``line``) where they were not known yet."""
        return type(self)(
            self.reason,
            file=self.file or file,
            step=self.step,
            field=self.field,
            line=self.line or line,
            column=self.column if self.line else None,
        )


class PipelineGraphError(SpecError):
    """The steps do not form a valid graph: a cycle, a duplicate name, an unknown step."""


class ParameterValidationError(MlpipeError):
    """A run-time parameter value is missing, unknown or of the wrong type."""


class ExpressionError(MlpipeError):
    """An expression (reference, JsonGet, arithmetic) could not be evaluated at run time."""


class ArtifactError(MlpipeError):
    """The artifact store could not write, find or safely read an artifact."""


class StepExecutionError(MlpipeError):
    """A step failed while running: its script exited non-zero, its callable raised, an output is missing."""


class RegistryError(MlpipeError):
    """The model registry has no such group or version, or the status change is not allowed."""


class SelectiveExecutionError(MlpipeError):
    """A selective run cannot be created: unknown or missing steps, an unusable reference run.

    Raised before any run is created; the reference run is never changed.
    """


class ExecutionNotFoundError(MlpipeError):
    """No execution (DAG run) with that id exists for the pipeline."""


class PipelineNotFoundError(MlpipeError):
    """No pipeline (DAG) with that name is known where the executions are (the DB or the api-server)."""


class StepOutputError(MlpipeError):
    """A step's outputs cannot be read: the step did not succeed in that execution."""


class ExecutionTimeoutError(MlpipeError, TimeoutError):
    """An execution did not finish within the time given to ``wait``."""


class AirflowApiError(MlpipeError):
    """Airflow's REST API refused a request or could not be reached; the message says which and why."""


class TransientApiError(AirflowApiError):
    """A REST call failed in a way that says nothing about the request (a 5xx answer, a lost
    connection): the same request may pass if sent again."""


class ApiRetriesExhaustedError(AirflowApiError):
    """A REST call kept failing transiently; the message names what was tried and how often."""


class ApiConflictError(AirflowApiError):
    """The api-server refused to create something that already exists (HTTP 409): a run id in use."""


class ApiAuthenticationError(AirflowApiError):
    """The api-server refused the credentials (HTTP 401), or no new token could be had."""


class PipelinePausedError(MlpipeError):
    """The pipeline's DAG is paused in Airflow: its queued executions do not start until it is unpaused."""


class InputNotAllowedError(StepExecutionError):
    """A step input given through a parameter names a path outside ``[mlpipe] input_roots``."""


class LineageNotFoundError(MlpipeError):
    """A lineage query names a model version or an artifact the lineage index does not know."""
