"""Callables used by the step tests (function and training steps). Plain module: importable by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_frame(rows: int) -> Any:
    import pandas as pd

    return pd.DataFrame({"x": list(range(rows)), "y": [value * 2.0 for value in range(rows)]})


def summarise(frame: Any, factor: int) -> dict[str, Any]:
    return {"rows": len(frame), "total": float(frame["y"].sum()) * factor}


def split(values: list[int]) -> tuple[list[int], list[int]]:
    return [v for v in values if v % 2 == 0], [v for v in values if v % 2 == 1]


def make_array(size: int) -> Any:
    import numpy as np

    return np.arange(size, dtype="float32").reshape(-1, 2)


def array_sum(array: Any) -> float:
    return float(array.sum())


class Opaque:
    """Not JSON, not an array, not a frame: stored as a pickle."""

    def __init__(self, value: int) -> None:
        self.value = value


def make_opaque(value: int) -> Opaque:
    return Opaque(value)


def read_opaque(thing: Opaque) -> int:
    return thing.value


def fail_once(marker: str) -> str:
    """Fails on the first call and succeeds on the next: the marker file remembers."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("first attempt fails on purpose")
    return "second attempt"


def echo(value: Any) -> Any:
    return value


def train_mean(hyperparameters: dict[str, Any], channels: dict[str, Path], model_dir: Path) -> dict[str, Any]:
    """A training callable: the 'model' is the mean of the numbers in the train channel, scaled."""
    numbers = [
        float(line) for path in sorted(channels["train"].rglob("*.txt")) for line in path.read_text().split()
    ]
    mean = sum(numbers) / len(numbers) * hyperparameters["scale"]
    (model_dir / "model.json").write_text(json.dumps({"mean": mean}))
    return {"mean": mean, "count": len(numbers)}


def raise_value_error(size: int) -> None:
    """Fails with a message of ``size`` characters and more."""
    raise ValueError("start of a long message " + "x" * size + " end of a long message")


def log_and_echo(value: Any) -> Any:
    """Logs through stdlib logging (as user code does), then returns its argument."""
    import logging

    logging.getLogger(__name__).info("echoing %s", value)
    return value
