"""A training script that takes its time; with HANG its first try writes half a model, then hangs;
with HANG_EVERY every try hangs."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=int, default=0)
args = parser.parse_args()
attempt = int(os.environ["AIRFLOW_CTX_TRY_NUMBER"])
markers = Path(os.environ["MARKER_DIR"])
model = Path(os.environ["SM_MODEL_DIR"]) / "model.json"
if attempt == 1 and os.environ["HANG"].lower() == "true":
    # Half a model in the model folder: only a finished script's folder may ever reach the store.
    model.write_text((markers / "partial-content").read_text())
    (markers / "started-1").write_text(str(os.getpid()))
    time.sleep(600)
if os.environ["HANG_EVERY"].lower() == "true":
    (markers / f"started-{attempt}").write_text(str(os.getpid()))
    time.sleep(600)
(markers / f"started-{attempt}").write_text(str(os.getpid()))
time.sleep(args.seconds)
model.write_text(json.dumps({"complete": True, "attempt": attempt}))
