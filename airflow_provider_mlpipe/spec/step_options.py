"""Reading what every step kind accepts: the step's name and its common options (depends_on, retry,
display_name, description, timeout, for_each, max_concurrency, code_files, cache)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError
from airflow_provider_mlpipe.model.cache import CacheConfig
from airflow_provider_mlpipe.model.step_fields import STEP_NAME, RetryPolicy
from airflow_provider_mlpipe.spec.expressions import ExpressionReader
from airflow_provider_mlpipe.spec.fields import describe
from airflow_provider_mlpipe.spec.yaml_source import line_of_key

_RETRY_KEYS = ("max_attempts", "interval_seconds", "backoff_rate", "max_interval_seconds")
_CACHE_KEYS = ("enabled", "expire_after")


class StepOptionsReader(ExpressionReader):
    """Reads a step's name and common options; :class:`~airflow_provider_mlpipe.spec.steps.StepReader`
    adds the fields of each step kind. ``cache`` also reads a pipeline's ``cache``."""

    def step_name(self, spec: Mapping[Any, Any], index: int, line: int | None) -> str:
        name = self.require(spec, "name", what="a step", prefix=f"steps[{index}].")
        name_line = line_of_key(spec, "name", line)
        if not isinstance(name, str):
            raise self.error(
                f"a step name must be a string, got {describe(name)}", f"steps[{index}].name", name_line
            )
        if not STEP_NAME.fullmatch(name):
            # Checked before anything else: the name becomes a task id and a folder of the artifact store.
            self.step = name
            raise self.error(
                f"invalid step name {name!r}: use letters, digits, '_', '-', '.' (not first), at most 200",
                "name",
                name_line,
            )
        return name

    def common_options(self, spec: Mapping[Any, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {
            "depends_on": self.optional_strings(spec, "depends_on"),
            "retry_policy": self.retry(spec),
            "display_name": self.optional_text(spec, "display_name"),
            "description": self.optional_text(spec, "description"),
            "code_files": self.optional_strings(spec, "code_files"),
            "cache_config": self.cache(spec),
        }
        if spec.get("timeout") is not None:
            options["timeout"] = self.number(spec["timeout"], "timeout", line_of_key(spec, "timeout"))
        if "for_each" in spec:
            options["for_each"] = self.optional_value(spec, "for_each")
        if spec.get("max_concurrency") is not None:
            options["max_concurrency"] = spec["max_concurrency"]
        return options

    def cache(self, spec: Mapping[Any, Any]) -> CacheConfig | None:
        """``cache: {enabled: true, expire_after: P30D}`` (or ``cache: true``), of a step or a pipeline."""
        if spec.get("cache") is None:
            return None
        line = line_of_key(spec, "cache")
        raw = spec["cache"]
        if isinstance(raw, bool):
            return CacheConfig(enable_caching=raw)
        cache = self.mapping(raw, "cache", line)
        self.check_keys(cache, _CACHE_KEYS, what="cache", prefix="cache.")
        self.note_keys(cache, prefix="cache.")
        enabled = cache.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.error(
                f"expected true or false, got {describe(enabled)}",
                "cache.enabled",
                line_of_key(cache, "enabled"),
            )
        expire_after = cache.get("expire_after")
        if expire_after is not None:
            expire_after = self.text(expire_after, "cache.expire_after", line_of_key(cache, "expire_after"))
        try:
            return CacheConfig(enable_caching=enabled, expire_after=expire_after)
        except SpecError as error:
            raise self.relocate(error, line_of_key(cache, "expire_after")) from None

    def retry(self, spec: Mapping[Any, Any]) -> RetryPolicy | None:
        if spec.get("retry") is None:
            return None
        line = line_of_key(spec, "retry")
        retry = self.mapping(spec["retry"], "retry", line)
        self.check_keys(retry, _RETRY_KEYS, what="retry", prefix="retry.")
        self.note_keys(retry, prefix="retry.")
        options: dict[str, Any] = {}
        for key, value in retry.items():
            field, key_line = f"retry.{key}", line_of_key(retry, key)
            if key == "max_attempts" and (isinstance(value, bool) or not isinstance(value, int)):
                raise self.error(f"expected an integer, got {describe(value)}", field, key_line)
            if value is not None or key != "max_interval_seconds":
                options[key] = self.number(value, field, key_line)
        try:
            return RetryPolicy(**options)
        except SpecError as error:  # a range (backoff_rate >= 1...): the model's rule, our line
            raise self.relocate(error) from None
