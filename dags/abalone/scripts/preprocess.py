"""Preprocess the abalone data: one-hot encode sex, split train/validation/test, scale features.

Processing contract: the input folder is in MLPIPE_INPUT_RAW, outputs go to MLPIPE_OUTPUT_TRAIN,
MLPIPE_OUTPUT_VALIDATION and MLPIPE_OUTPUT_TEST (CSV with a header, label `rings` first).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

LABEL = "rings"
SEXES = ["F", "I", "M"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-fraction", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    csv_files = sorted(Path(os.environ["MLPIPE_INPUT_RAW"]).rglob("*.csv"))
    if len(csv_files) != 1:
        raise SystemExit(f"expected one CSV file in the raw input, found {[str(p) for p in csv_files]}")
    frame = pd.read_csv(csv_files[0])
    for sex in SEXES:
        frame[f"sex_{sex}"] = (frame["sex"] == sex).astype(float)
    frame = frame.drop(columns=["sex"])
    features = [column for column in frame.columns if column != LABEL]
    frame = frame[[LABEL, *features]]

    order = np.random.default_rng(args.seed).permutation(len(frame))
    n_train = int(len(frame) * args.train_fraction)
    n_validation = (len(frame) - n_train) // 2
    parts = {
        "train": frame.iloc[order[:n_train]],
        "validation": frame.iloc[order[n_train : n_train + n_validation]],
        "test": frame.iloc[order[n_train + n_validation :]],
    }
    numeric = [column for column in features if not column.startswith("sex_")]
    scaler = StandardScaler().fit(parts["train"][numeric])
    for name, part in parts.items():
        part = part.copy()
        part[numeric] = scaler.transform(part[numeric])
        part.to_csv(Path(os.environ[f"MLPIPE_OUTPUT_{name.upper()}"]) / f"{name}.csv", index=False)
        print(f"{name}: {len(part)} rows")


if __name__ == "__main__":
    main()
