"""The step functions of ``shapes.pipeline.yaml``: small and fast."""

from __future__ import annotations


def load(rows: int) -> list[int]:
    return list(range(rows))


def transform(values: list[int], scale: float, mode: str, verbose: bool) -> list[float]:
    scaled = [value * scale for value in values]
    if verbose:
        print(mode, scaled)
    return scaled


def total(values: list[float]) -> float:
    return sum(values)


def label(value: float, size: str) -> str:
    return f"{size}: {value}"
