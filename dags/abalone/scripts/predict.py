"""Batch predictions of the abalone model (transform contract).

The model folder is in MLPIPE_MODEL_DIR (xgboost-model.json), the data folder in MLPIPE_INPUT_DATA
(CSV files, with or without the `rings` label); predictions.csv goes to MLPIPE_OUTPUT_PREDICTIONS.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import xgboost as xgb

LABEL = "rings"


def main() -> None:
    (model_file,) = sorted(Path(os.environ["MLPIPE_MODEL_DIR"]).rglob("xgboost-model.json"))
    booster = xgb.Booster()
    booster.load_model(model_file)
    frames = [pd.read_csv(path) for path in sorted(Path(os.environ["MLPIPE_INPUT_DATA"]).rglob("*.csv"))]
    data = pd.concat(frames, ignore_index=True)
    features = data.drop(columns=[LABEL], errors="ignore")
    result = pd.DataFrame({"predicted_rings": booster.predict(xgb.DMatrix(features))})
    if LABEL in data:
        result[LABEL] = data[LABEL]
    result.to_csv(Path(os.environ["MLPIPE_OUTPUT_PREDICTIONS"]) / "predictions.csv", index=False)
    print(f"{len(result)} predictions written")


if __name__ == "__main__":
    main()
