"""A fan-out step's tasks: ``_<step>.items`` lists the items, ``_<step>.each`` (a mapped task) runs the
step once per item, and the step's own task collects what they produced (see
:mod:`airflow_provider_mlpipe.model.fanout`).

The two internal tasks are not steps: a selective run plans and records the step's own task only.
They follow it: when a selective run does not select the step (it reuses it, or does not run it),
the items task skips itself, and with it every item, so no item is computed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_mlpipe.exceptions import StepExecutionError
from airflow_provider_mlpipe.model.fanout import each_task_id, items_task_id
from airflow_provider_mlpipe.operators.base import MlpipeStepOperator, StepRuntime
from airflow_provider_mlpipe.operators.failures import records_failures
from airflow_provider_mlpipe.selective.rerun import applied_selective_block

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef


class MlpipeItemsOperator(MlpipeStepOperator):
    """Evaluates a fan-out step's list (``for_each``, or a tuning step's trials); its return value is
    the list Airflow maps the step's ``_<step>.each`` task over."""

    ui_color = "#f3f3f3"

    def __init__(self, **kwargs: Any) -> None:
        step = kwargs["step"]
        kwargs.setdefault("task_id", items_task_id(step.name))
        kwargs.setdefault("task_display_name", f"{step.display_name or step.name}: items")
        kwargs.setdefault("doc_md", f"Lists the items that step `{step.name}` runs once per item.")
        kwargs.setdefault("execution_timeout", None)
        super().__init__(**kwargs)

    @property
    def is_item_run(self) -> bool:
        return False

    @records_failures
    def execute(self, context: Context) -> list[Any]:  # type: ignore[override]  # the items, not a record
        skip_unless_selected(self.step.name, context)
        runtime = StepRuntime(self, context)
        try:
            if self.step.loop_gate is not None:
                from airflow_provider_mlpipe.operators.loop import check_loop_gate

                check_loop_gate(runtime, self.step.loop_gate)
            items = self.step.fan_out_items(runtime.evaluate)
        finally:
            runtime.cleanup()
        self.log.info("Step %s runs once per item, %d items: %s", self.step.name, len(items), items)
        return items


def skip_unless_selected(step_name: str, context: Context) -> None:
    """In a selective run that does not select ``step_name``, skip (its items are not computed again)."""
    block = applied_selective_block(getattr(context.get("dag_run"), "conf", None))
    if block is not None and step_name not in (block.get("selected_steps") or ()):
        raise AirflowSkipException(
            f"step {step_name!r} is not selected in this selective run: its items are not run again"
        )


def item_records(step_name: str, context: Context) -> tuple[list[Any], list[dict[str, Any]]]:
    """The items of a fan-out step in this run, and the record each item's run left, in item order."""
    ti = context["ti"]
    items = ti.xcom_pull(task_ids=items_task_id(step_name), key="return_value")
    if not isinstance(items, list):
        raise StepExecutionError(f"step {step_name!r}: its list of items was not recorded in this run")
    if not items:
        return [], []
    records = ti.xcom_pull(
        task_ids=each_task_id(step_name), key="return_value", map_indexes=list(range(len(items)))
    )
    missing = [str(items[index]) for index, record in enumerate(records) if not isinstance(record, dict)]
    if missing:
        raise StepExecutionError(f"step {step_name!r}: no result for item(s) {', '.join(missing)}")
    return items, records


def output_refs(records: list[dict[str, Any]], name: str) -> list[ArtifactRef]:
    """Output ``name`` of every item's record, in item order."""
    from airflow_provider_mlpipe.artifacts.reference import ArtifactRef

    return [ArtifactRef.from_dict(record["outputs"][name]) for record in records]


class MlpipeCollectOperator(MlpipeStepOperator):
    """A fan-out step's own task: each output is the list of that output of every item, in item order
    (a ``collection`` artifact: references only)."""

    def run_step(self, runtime: StepRuntime) -> tuple[dict[str, Any], dict[str, Any]]:
        from airflow_provider_mlpipe.artifacts.serializers import save_collection

        step = self.step
        items, records = item_records(step.name, runtime.context)
        producer = {
            "pipeline": self.pipeline.name,
            "step": step.name,
            "run_id": runtime.context.get("run_id"),
        }
        values = {
            name: save_collection(
                runtime.store, output_refs(records, name), producer={**producer, "output": name}
            )
            for name in step.output_names()
        }
        metadata = {
            "items": len(items),
            "results": [
                {"item": item, **_summary(record)} for item, record in zip(items, records, strict=True)
            ],
        }
        return values, metadata


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    metadata = record.get("metadata") or {}
    return {"metadata": metadata} if metadata else {}
