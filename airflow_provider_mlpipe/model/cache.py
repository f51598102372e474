"""Step caching settings, named as in SageMaker: ``CacheConfig(enable_caching=True, expire_after="P30D")``.

A step with caching on takes the outputs of an earlier run of the same step with the same fingerprint
(definition, code, parameters it reads, input contents; see :mod:`airflow_provider_mlpipe.fingerprint`)
instead of running. Off unless asked for, per step or for the whole pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_mlpipe.exceptions import SpecError

# The kinds whose work can be taken from the cache: the others are cheap (condition), must happen
# every time (fail), or have an effect beyond their outputs (register_model adds a model version).
CACHEABLE_KINDS = frozenset({"function", "processing", "training"})


def parse_expire_after(value: Any, *, step: str | None = None) -> Any:
    """``expire_after`` as a ``pendulum.Duration``; a SpecError for anything but an ISO-8601 duration.

    :param value: e.g. ``"P30D"``, ``"PT12H"``, ``"P1Y2M"``.
    """
    import pendulum
    from pendulum.parsing.exceptions import ParserError

    problem = f"expire_after must be an ISO-8601 duration such as P30D or PT12H, got {value!r}"
    if not isinstance(value, str) or not value.strip().upper().startswith("P"):
        raise SpecError(problem, step=step, field="cache.expire_after")
    try:
        duration = pendulum.parse(value.strip().upper())
    except (ParserError, ValueError):
        raise SpecError(problem, step=step, field="cache.expire_after") from None
    if not isinstance(duration, pendulum.Duration) or duration.total_seconds() <= 0:
        raise SpecError(
            f"expire_after must be a positive duration, got {value!r}", step=step, field="cache.expire_after"
        )
    return duration


@dataclass(frozen=True)
class CacheConfig:
    """Whether a step's outputs may come from an earlier run with the same fingerprint, and for how long.

    :param enable_caching: take cached outputs when there are some (and store new ones).
    :param expire_after: an ISO-8601 duration (``P30D``); an entry older than that is a miss. None:
        entries never expire.
    """

    enable_caching: bool = True
    expire_after: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enable_caching, bool):
            raise SpecError(
                f"enable_caching must be true or false, got {self.enable_caching!r}", field="cache.enabled"
            )
        if self.expire_after is not None:
            parse_expire_after(self.expire_after)

    def expiry(self) -> Any:
        """The ``pendulum.Duration`` after which an entry is stale, or None."""
        return parse_expire_after(self.expire_after) if self.expire_after is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enable_caching, "expire_after": self.expire_after}


def check_cache_config(config: Any, *, step: str, kind: str) -> CacheConfig | None:
    """A step's ``cache_config``: a :class:`CacheConfig` (or None), on a kind that can be cached."""
    if config is None:
        return None
    if not isinstance(config, CacheConfig):
        raise SpecError(f"cache_config must be a CacheConfig, got {config!r}", step=step, field="cache")
    if config.enable_caching and kind not in CACHEABLE_KINDS:
        raise SpecError(
            f"a {kind} step cannot be cached (only {', '.join(sorted(CACHEABLE_KINDS))} steps can)",
            step=step,
            field="cache",
        )
    return config
