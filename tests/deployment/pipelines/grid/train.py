"""A stand-in training script (SageMaker script mode): the model records its hyperparameters."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--depth", type=int, required=True)
parser.add_argument("--eta", type=float, required=True)
args = parser.parse_args()
model = {"depth": args.depth, "eta": args.eta}
(Path(os.environ["SM_MODEL_DIR"]) / "model.json").write_text(json.dumps(model))
(Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "metrics.json").write_text(
    json.dumps({"score": args.depth * args.eta})
)
