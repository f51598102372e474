"""A pipeline's checks: names, references, branches, loops, cycles and script files.

The checks only read the pipeline's graph, so they live apart from the class that builds it:
:class:`~airflow_provider_mlpipe.model.pipeline.Pipeline` inherits them and runs them from ``validate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import PipelineGraphError, SpecError
from airflow_provider_mlpipe.model.decision_steps import ConditionStep
from airflow_provider_mlpipe.model.expressions import JsonGet, StepOutput
from airflow_provider_mlpipe.model.parameters import Parameter
from airflow_provider_mlpipe.model.step_base import Step
from airflow_provider_mlpipe.model.step_fields import IO_NAME


class PipelineChecks:
    """The parts of :meth:`Pipeline.validate <airflow_provider_mlpipe.model.pipeline.Pipeline.validate>`."""

    steps: dict[str, Step]
    parameters: dict[str, Parameter]

    if TYPE_CHECKING:
        # Defined by Pipeline, which the checks are part of.
        def _error(self, error: SpecError) -> SpecError: ...
        def branch_owner(self) -> dict[str, tuple[str, str]]: ...

    def _validate_control_flow(self) -> None:
        """Loops, fan-outs and ``{item}``: what :meth:`_validate_step` does not know of."""
        from airflow_provider_mlpipe.model.fanout import check_item_use
        from airflow_provider_mlpipe.model.loops import LoopStep

        owners = self.branch_owner()
        for step in self.steps.values():
            try:
                check_item_use(step)
            except SpecError as error:
                raise self._error(error) from None
            if not isinstance(step, LoopStep):
                continue
            if step.name in owners:
                raise self._error(
                    SpecError(
                        f"a loop cannot be in a branch of condition step {owners[step.name][0]!r}; put the "
                        "condition inside the loop's steps, or after the loop",
                        step=step.name,
                    )
                )
            for body in step.body:
                if body.name in self.steps:
                    raise self._error(
                        PipelineGraphError(
                            f"step {body.name!r} of the loop has the name of a step outside it; rename one",
                            step=step.name,
                            field="steps",
                        )
                    )

    def _branch_conditions(self) -> dict[str, list[str]]:
        """Each step named in a condition's branches -> the condition steps naming it, in order (found
        in one pass: :meth:`_validate_step` looks its step up instead of walking every step again)."""
        conditions: dict[str, list[str]] = {}
        for other in self.steps.values():
            if isinstance(other, ConditionStep):
                for name in other.if_steps + other.else_steps:
                    conditions.setdefault(name, []).append(other.name)
        return conditions

    def _validate_step(self, step: Step, *, check_files: bool, conditions: dict[str, list[str]]) -> None:
        """Check one step; ``conditions`` is :meth:`_branch_conditions`."""
        for dependency in step.depends_on:
            if dependency not in self.steps:
                raise self._error(
                    PipelineGraphError(
                        f"depends on unknown step {dependency!r}", step=step.name, field="depends_on"
                    )
                )
        for field_name, reference in step.references():
            self._validate_reference(step, field_name, reference)
        if isinstance(step, ConditionStep):
            seen: dict[str, str] = {}
            for branch, names in (("if_steps", step.if_steps), ("else_steps", step.else_steps)):
                for name in names:
                    if name not in self.steps:
                        raise self._error(
                            PipelineGraphError(
                                f"unknown step {name!r} in {branch}", step=step.name, field=branch
                            )
                        )
                    if name in seen:
                        where = (
                            "twice in " + branch
                            if seen[name] == branch
                            else "in both if_steps and else_steps"
                        )
                        raise self._error(
                            PipelineGraphError(f"step {name!r} is {where}", step=step.name, field=branch)
                        )
                    seen[name] = branch
        owners = conditions.get(step.name, [])
        for other in owners:
            if other != owners[0]:
                raise self._error(
                    PipelineGraphError(
                        f"step is in branches of two condition steps ({owners[0]!r}, "
                        f"{other!r}); put it after one of them with depends_on instead",
                        step=step.name,
                    )
                )
        names = step.output_names()
        if len(set(names)) != len(names):
            raise self._error(SpecError("duplicate output names", step=step.name, field="outputs"))
        for field_name, io_names in (("outputs", names), ("inputs", step.input_names())):
            for io_name in io_names:
                if not isinstance(io_name, str) or not IO_NAME.fullmatch(io_name):
                    raise self._error(
                        SpecError(
                            f"invalid name {io_name!r}: use a letter or _ then letters, digits, _ or -",
                            step=step.name,
                            field=field_name,
                        )
                    )
        for property_file in step.property_files():
            if property_file.output_name not in names:
                raise self._error(
                    SpecError(
                        f"property file {property_file.name!r} is in unknown output {property_file.output_name!r}",
                        step=step.name,
                        field="property_files",
                    )
                )
        if check_files:
            for path in step.code_files():
                if not path.is_file():
                    raise self._error(
                        SpecError(f"script file not found: {path}", step=step.name, field="code")
                    )
            from airflow_provider_mlpipe.fingerprint.code import declared_paths

            for index, pattern in enumerate(step.declared_code_files):
                if not declared_paths(pattern, step.base_dir):
                    raise self._error(
                        SpecError(
                            f"code_files: {pattern!r} names no file",
                            step=step.name,
                            field=f"code_files[{index}]",
                        )
                    )

    def _validate_reference(self, step: Step, field_name: str, reference: Any) -> None:
        if isinstance(reference, Parameter):
            known = self.parameters.get(reference.name)
            if known is None:
                raise self._error(
                    SpecError(f"unknown parameter {reference.name!r}", step=step.name, field=field_name)
                )
            return
        if not isinstance(reference, (StepOutput, JsonGet)):
            return
        producer = self.steps.get(reference.step_name)
        if producer is None:
            raise self._error(
                PipelineGraphError(
                    f"reference to unknown step {reference.step_name!r}{self._loop_hint(reference.step_name)}",
                    step=step.name,
                    field=field_name,
                )
            )
        if producer is step:
            raise self._error(
                PipelineGraphError("a step cannot read its own output", step=step.name, field=field_name)
            )
        if isinstance(reference, StepOutput) and reference.output_name not in producer.output_names():
            raise self._error(
                SpecError(
                    f"step {producer.name!r} has no output {reference.output_name!r} "
                    f"(it has: {', '.join(producer.output_names()) or 'none'})",
                    step=step.name,
                    field=field_name,
                )
            )
        if isinstance(reference, JsonGet):
            names = [item.name for item in producer.property_files()]
            if reference.property_file not in names:
                raise self._error(
                    SpecError(
                        f"step {producer.name!r} has no property file {reference.property_file!r} "
                        f"(it has: {', '.join(names) or 'none'})",
                        step=step.name,
                        field=field_name,
                    )
                )

    def _loop_hint(self, name: str) -> str:
        from airflow_provider_mlpipe.model.loops import LoopStep

        for step in self.steps.values():
            if isinstance(step, LoopStep) and any(body.name == name for body in step.body):
                return f" (it is inside loop {step.name!r}: read the loop's outputs, {{step: {step.name}, output: ...}})"
        return ""
