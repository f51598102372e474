"""Fan-out: a step run once per item of a list, its results collected for the steps after it.

Any function, processing, training or transform step takes ``for_each`` (a list parameter, a list
output of another step, or a literal list) and optionally ``max_concurrency``. Inside the step,
``ForEachItem()`` (``{item: ""}`` in YAML) is the current item, ``ForEachItem("depth")`` a key of a
mapping item. Downstream steps read the fan-out step's outputs as lists, one value per item, in the
order of the items.

In Airflow a fan-out step is three tasks (see :mod:`airflow_provider_mlpipe.factory`): ``_<step>.items``
evaluates the list, ``_<step>.each`` is a mapped task (Airflow's dynamic task mapping) with one task
instance per item, at most ``max_concurrency`` at once, and the step's own task collects their
outputs. Only the last one is a step (selective runs, ``list_steps()``); the two others belong to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.exceptions import ExpressionError, SpecError
from airflow_provider_mlpipe.model.expressions import EvaluationContext, Reference, parse_json_path
from airflow_provider_mlpipe.model.parameters import Parameter

if TYPE_CHECKING:
    from airflow_provider_mlpipe.model.step_base import Step

# Step kinds that can run once per item: those that compute outputs from inputs.
FAN_OUT_KINDS = ("function", "processing", "training", "transform")
# Mapped task instances are rows in the metadata DB; Airflow's own default bound is 1024.
MAX_FAN_OUT_ITEMS = 1024
MAX_CONCURRENCY = 1024


def items_task_id(step_name: str) -> str:
    """The internal task that evaluates a fan-out step's list."""
    return f"_{step_name}.items"


def each_task_id(step_name: str) -> str:
    """The mapped internal task that runs a fan-out step once per item."""
    return f"_{step_name}.each"


class ForEachItem(Reference):
    """The current item of a fan-out step (``{item: ""}``), or a part of it (``{item: "depth"}``).

    :param path: a JSON path into the item (``""`` for the whole item), as ``JsonGet`` takes it.
    """

    def __init__(self, path: str = "") -> None:
        self.path = path
        self.path_parts = parse_json_path(path)

    def evaluate(self, context: EvaluationContext) -> Any:
        item_of = getattr(context, "item", None)
        if item_of is None:
            raise ExpressionError("{item} is only defined inside a step with for_each")
        current = item_of()
        for part in self.path_parts:
            try:
                current = current[part]
            except (KeyError, IndexError, TypeError):
                raise ExpressionError(
                    f"{{item: {self.path!r}}}: item {item_of()!r} has no {part!r}"
                ) from None
        return current

    def to_dict(self) -> Any:
        return {"item": self.path}


def check_fan_out(step: Step) -> None:
    """Refuse a ``for_each`` that can never be a list, and a ``max_concurrency`` without one."""
    if step.for_each is None:
        raise SpecError("max_concurrency needs for_each", step=step.name, field="max_concurrency")
    if step.kind not in FAN_OUT_KINDS:
        raise SpecError(
            f"a {step.kind} step cannot run once per item (for_each works with: {', '.join(FAN_OUT_KINDS)})",
            step=step.name,
            field="for_each",
        )
    items = step.for_each
    if isinstance(items, Parameter):
        if items.json_type != "array":
            raise SpecError(
                f"for_each must be a list, but parameter {items.name!r} is {items.type_name}; "
                "declare it with type: List",
                step=step.name,
                field="for_each",
            )
    elif not _may_be_list(items):
        raise SpecError(
            f"for_each must be a list (a literal list, a List parameter or a step's list output), "
            f"got {items!r}",
            step=step.name,
            field="for_each",
        )
    elif isinstance(items, (list, tuple)) and not items:
        raise SpecError(
            "for_each is an empty list: the step would never run", step=step.name, field="for_each"
        )
    elif isinstance(items, (list, tuple)) and len(items) > MAX_FAN_OUT_ITEMS:
        raise SpecError(
            f"for_each has {len(items)} items; at most {MAX_FAN_OUT_ITEMS}", step=step.name, field="for_each"
        )
    limit = step.max_concurrency
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONCURRENCY
    ):
        raise SpecError(
            f"max_concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {limit!r}",
            step=step.name,
            field="max_concurrency",
        )


def _may_be_list(value: Any) -> bool:
    """Whether ``value`` is a list or an expression that may give one (a step output, a JsonGet)."""
    from airflow_provider_mlpipe.model.expressions import Expression

    return isinstance(value, (list, tuple)) or (isinstance(value, Expression) and not _is_scalar(value))


def _is_scalar(value: Any) -> bool:
    from airflow_provider_mlpipe.model.expressions import BinaryOperation, Join

    return isinstance(value, (Join, BinaryOperation))


def checked_items(step_name: str, expression: Any, items: Any) -> list[Any]:
    """The evaluated ``for_each`` of a step as a list, or an error naming the step and the expression.

    :param step_name: the fan-out step.
    :param expression: ``for_each`` as declared (for the message).
    :param items: its value in this run.
    """
    from airflow_provider_mlpipe.model.expressions import to_canonical

    if not isinstance(items, (list, tuple)):
        raise ExpressionError(
            f"step {step_name!r}: for_each {to_canonical(expression)!r} gave {type(items).__name__} "
            f"{items!r}, not a list"
        )
    if len(items) > MAX_FAN_OUT_ITEMS:
        raise ExpressionError(
            f"step {step_name!r}: for_each {to_canonical(expression)!r} gave {len(items)} items; "
            f"at most {MAX_FAN_OUT_ITEMS}"
        )
    return list(items)


def item_references(step: Step) -> Iterator[str]:
    """The fields of ``step`` that read ``{item}``."""
    for field_name, reference in step.references():
        if isinstance(reference, ForEachItem):
            yield field_name


def check_item_use(step: Step) -> None:
    """``{item}`` only makes sense in a fan-out step."""
    if step.for_each is not None:
        return
    for field_name in item_references(step):
        raise SpecError("{item} is used in a step without for_each", step=step.name, field=field_name)
