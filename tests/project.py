"""A small ML project on disk, for the tests of caching, selective execution and lineage: a data file,
a processing script that imports a helper beside it, a training function whose file imports a package
of the project, and a model registration. Each step counts its real runs in ``counts/``."""

from __future__ import annotations

import textwrap
from pathlib import Path

SPEC = """
name: {name}
cache: {cache}
parameters:
  - {{name: Alpha, type: Float, default: 0.5}}
  - {{name: Unused, type: Integer, default: 1}}
steps:
  - name: Prep
    type: processing
    code: scripts/prep.py
    inputs: {{raw: data/raw.csv}}
    outputs: [clean]
  - name: Train
    type: training
    function: train_fn.py:train
    hyperparameters: {{alpha: {{param: Alpha}}}}
    inputs: {{clean: {{step: Prep, output: clean}}}}
  - name: Register
    type: register_model
    model_data: {{step: Train, output: model}}
    model_package_group_name: {name}
"""

PREP = """
import os
from pathlib import Path

import helpers

here = Path(__file__).resolve().parent
counts = here.parent / "counts"
counts.mkdir(exist_ok=True)
with open(counts / "prep", "a") as counter:
    counter.write("run\\n")
source = Path(os.environ["MLPIPE_INPUT_RAW"]) / "raw.csv"
rows = [line.split(",") for line in source.read_text().splitlines()[1:]]
target = Path(os.environ["MLPIPE_OUTPUT_CLEAN"]) / "clean.csv"
target.write_text("\\n".join(str(helpers.clean(float(x))) for x, _ in rows) + "\\n")
"""

HELPERS = """
def clean(value):
    return round(value * 2, 3)
"""

TRAIN = """
from pathlib import Path

from modeling import weights


def train(hyperparameters, channels, model_dir):
    counts = Path(__file__).resolve().parent / "counts"
    counts.mkdir(exist_ok=True)
    with open(counts / "train", "a") as counter:
        counter.write("run\\n")
    values = [float(line) for line in (channels["clean"] / "clean.csv").read_text().split()]
    total = weights.weighted(values, hyperparameters["alpha"])
    (model_dir / "model.txt").write_text(str(total))
    return {"total": total}
"""

WEIGHTS = """
def weighted(values, alpha):
    return round(sum(values) * alpha, 6)
"""


def make_project(root: Path, name: str, *, cache: str = "{enabled: true, expire_after: P30D}") -> Path:
    """Write the project under ``root``; return its spec file."""
    for relative, text in {
        "scripts/prep.py": PREP,
        "scripts/helpers.py": HELPERS,
        "train_fn.py": TRAIN,
        "modeling/__init__.py": "",
        "modeling/weights.py": WEIGHTS,
        "data/raw.csv": "x,y\n1,2\n3,4\n",
        f"{name}.pipeline.yaml": SPEC.format(name=name, cache=cache),
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root / f"{name}.pipeline.yaml"


def runs(root: Path, step: str) -> int:
    """How many times ``step`` really ran."""
    counter = root / "counts" / step.lower()
    return len(counter.read_text().splitlines()) if counter.exists() else 0
