"""Train an xgboost regressor on the abalone data (SageMaker script-mode contract).

Channels in SM_CHANNEL_TRAIN and SM_CHANNEL_VALIDATION, the model goes to SM_MODEL_DIR as
xgboost-model.json (xgboost's own format, no pickle), metrics to SM_OUTPUT_DATA_DIR/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd
import xgboost as xgb

LABEL = "rings"


def load(channel: str) -> xgb.DMatrix:
    (path,) = sorted(Path(os.environ[f"SM_CHANNEL_{channel}"]).rglob("*.csv"))
    frame = pd.read_csv(path)
    return xgb.DMatrix(frame.drop(columns=[LABEL]), label=frame[LABEL])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_depth", type=int, default=5)
    parser.add_argument("--eta", type=float, default=0.2)
    parser.add_argument("--num_round", type=int, default=50)
    parser.add_argument("--objective", default="reg:squarederror")
    parser.add_argument("--subsample", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    train, validation = load("TRAIN"), load("VALIDATION")
    params = {
        "max_depth": args.max_depth,
        "eta": args.eta,
        "objective": args.objective,
        "subsample": args.subsample,
        "seed": args.seed,
        "nthread": 2,
    }
    history: dict = {}
    booster = xgb.train(
        params,
        train,
        num_boost_round=args.num_round,
        evals=[(train, "train"), (validation, "validation")],
        evals_result=history,
        verbose_eval=10,
    )
    booster.save_model(Path(os.environ["SM_MODEL_DIR"]) / "xgboost-model.json")
    validation_rmse = history["validation"]["rmse"][-1]
    metrics = {
        "train_rmse": history["train"]["rmse"][-1],
        "validation_rmse": validation_rmse,
        "validation_mse": validation_rmse**2,
    }
    (Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "metrics.json").write_text(json.dumps(metrics))
    print("metrics:", metrics)


if __name__ == "__main__":
    main()
