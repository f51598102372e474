"""Evaluate the abalone model on the test split; write evaluation.json with the MSE.

Processing contract: MLPIPE_INPUT_MODEL (xgboost-model.json), MLPIPE_INPUT_TEST (test.csv), output
MLPIPE_OUTPUT_EVALUATION/evaluation.json as in SageMaker's example.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

LABEL = "rings"


def main() -> None:
    (model_file,) = sorted(Path(os.environ["MLPIPE_INPUT_MODEL"]).rglob("xgboost-model.json"))
    booster = xgb.Booster()
    booster.load_model(model_file)
    (test_file,) = sorted(Path(os.environ["MLPIPE_INPUT_TEST"]).rglob("*.csv"))
    frame = pd.read_csv(test_file)
    predictions = booster.predict(xgb.DMatrix(frame.drop(columns=[LABEL])))
    squared_errors = (frame[LABEL].to_numpy() - predictions) ** 2
    report = {
        "regression_metrics": {
            "mse": {
                "value": float(np.mean(squared_errors)),
                "standard_deviation": float(np.std(squared_errors)),
            }
        }
    }
    (Path(os.environ["MLPIPE_OUTPUT_EVALUATION"]) / "evaluation.json").write_text(
        json.dumps(report, indent=2)
    )
    print(f"test MSE: {report['regression_metrics']['mse']['value']:.4f} on {len(frame)} rows")


if __name__ == "__main__":
    main()
