"""Small, fast callables for the local-session tests. Plain module: importable by name."""

from __future__ import annotations


def load(rows: int, offset: int = 0) -> list[int]:
    """The numbers ``offset`` .. ``offset + rows - 1``."""
    return [offset + value for value in range(rows)]


def transform(values: list[int], scale: int) -> list[int]:
    """Each value times ``scale``; a negative scale fails the step (how the tests make a run fail)."""
    if scale < 0:
        raise ValueError(f"scale must not be negative, got {scale}")
    return [value * scale for value in values]


def total(values: list[int]) -> int:
    return sum(values)


def label(value: int, size: str) -> str:
    return f"{size}: {value}"
