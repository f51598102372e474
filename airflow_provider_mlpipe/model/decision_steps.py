"""The steps that decide rather than compute: ``ConditionStep`` (branch), ``FailStep`` (stop the run)
and ``RegisterModel`` (record a model version)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.conditions import Condition
from airflow_provider_mlpipe.model.expressions import to_canonical
from airflow_provider_mlpipe.model.step_base import Step, _step_name

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


class ConditionStep(Step):
    """Evaluates conditions (all must hold) and runs ``if_steps`` or ``else_steps``.

    Output: ``outcome`` (bool). Steps after both branches may rejoin: a step runs when none of its
    upstream steps failed and at least one ran. Condition steps may sit inside branches (nesting).

    :param conditions: a list of conditions, all of which must hold.
    :param if_steps: steps (or names) run when they hold.
    :param else_steps: steps (or names) run otherwise.
    """

    kind = "condition"

    def __init__(
        self,
        name: str,
        conditions: Sequence[Condition],
        if_steps: Sequence[Step | str] | None = None,
        else_steps: Sequence[Step | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if not conditions:
            raise SpecError("a condition step needs at least one condition", step=name, field="conditions")
        for condition in conditions:
            if not isinstance(condition, Condition):
                raise SpecError(f"expected a condition, got {condition!r}", step=name, field="conditions")
        self.conditions = list(conditions)
        self._if_steps = list(if_steps or [])
        self._else_steps = list(else_steps or [])
        self.if_steps: list[str] = [_step_name(item) for item in self._if_steps]
        self.else_steps: list[str] = [_step_name(item) for item in self._else_steps]

    def output_names(self) -> list[str]:
        return ["outcome"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        return ((f"conditions[{index}]", value) for index, value in enumerate(self.conditions))

    def related_steps(self) -> Iterator[Step]:
        yield from super().related_steps()
        yield from (item for item in self._if_steps + self._else_steps if isinstance(item, Step))

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "conditions": [condition.to_dict() for condition in self.conditions],
            "if_steps": self.if_steps,
            "else_steps": self.else_steps,
        }


class FailStep(Step):
    """Stops the run as failed with a message; the message may hold expressions (``Join``, JsonGet).

    :param error_message: text or an expression.
    """

    kind = "fail"

    def __init__(self, name: str, error_message: Any = "", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.error_message = error_message

    def inputs(self) -> Iterator[tuple[str, Any]]:
        return iter((("error_message", self.error_message),))

    def _definition_fields(self) -> dict[str, Any]:
        return {"error_message": to_canonical(self.error_message)}


class RegisterModel(Step):
    """Records a model version in the model registry (by default kept in the artifact store).

    Output: ``model_package`` (group, version, approval status).

    :param model_data: the model artifact, e.g. ``train.output("model")``.
    :param model_package_group_name: the registry group.
    :param approval_status: ``PendingManualApproval`` (default), ``Approved`` or ``Rejected``.
    :param model_metrics: metrics to keep with the version, e.g. a ``JsonGet`` of the evaluation.
    :param description: free text kept with the version.
    :param metadata: extra key/values kept with the version.
    """

    kind = "register_model"

    def __init__(
        self,
        name: str,
        model_data: Any,
        model_package_group_name: Any,
        approval_status: Any = "PendingManualApproval",
        model_metrics: Any = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, description=description, **kwargs)
        if isinstance(approval_status, str) and approval_status not in APPROVAL_STATUSES:
            raise SpecError(
                f"approval_status must be one of {', '.join(APPROVAL_STATUSES)}, got {approval_status!r}",
                step=name,
                field="approval_status",
            )
        self.model_data = model_data
        self.model_package_group_name = model_package_group_name
        self.approval_status = approval_status
        self.model_metrics = model_metrics
        self.metadata = dict(metadata or {})

    def output_names(self) -> list[str]:
        return ["model_package"]

    def inputs(self) -> Iterator[tuple[str, Any]]:
        yield "model_data", self.model_data
        yield "model_package_group_name", self.model_package_group_name
        yield "approval_status", self.approval_status
        yield "model_metrics", self.model_metrics
        yield from ((f"metadata.{key}", value) for key, value in self.metadata.items())

    def _definition_fields(self) -> dict[str, Any]:
        return {
            "model_data": to_canonical(self.model_data),
            "model_package_group_name": to_canonical(self.model_package_group_name),
            "approval_status": to_canonical(self.approval_status),
            "model_metrics": to_canonical(self.model_metrics),
            "metadata": to_canonical(self.metadata),
        }
