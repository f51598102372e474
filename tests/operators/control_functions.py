"""Functions the control-flow tests run as steps (imported by name, as a worker imports them)."""

from __future__ import annotations

import json
from pathlib import Path


def prepare() -> list[float]:
    return [1.0, 2.0, 3.0]


def train(data: list[float], rounds: int) -> dict:
    return {"rounds": rounds, "mse": 10.0 / rounds}


def evaluate(model: dict) -> float:
    return model["mse"]


def square(x: int, scale: int = 1) -> int:
    if x < 0:
        raise ValueError(f"negative item {x}")
    return x * x * scale


def total(values: list[int]) -> int:
    return sum(values)


def fit(hyperparameters: dict, channels: dict, model_dir: Path) -> dict:
    (Path(model_dir) / "model.json").write_text(json.dumps(hyperparameters))
    depth = hyperparameters["max_depth"]
    return {"mse": (depth - 3) ** 2 + 0.5 * (hyperparameters["kind"] == "b")}


def predict(model_dir: Path, data_dir: Path, output_dir: Path) -> None:
    model = json.loads((Path(model_dir) / "model.json").read_text())
    rows = sum(len(path.read_text().splitlines()) for path in Path(data_dir).rglob("*.csv"))
    (Path(output_dir) / "predictions.json").write_text(json.dumps({"rows": rows, "model": model}))
