"""What the in-process bench scripts share.

Imported by module name: a script run as ``python bench/<script>.py`` has ``bench/`` on its sys.path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def throwaway_home(prefix: str = "mlpipe-bench-home-") -> Path:
    """Point Airflow and the provider at a new temporary home (SQLite DB, dags folder, artifact store).

    Call before anything imports Airflow: it reads these settings once, at import.

    :param prefix: the temporary directory's name prefix.
    :return: the new home; its ``dags`` folder exists, its ``artifacts`` store is made on first use.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(home / "dags")
    os.environ["AIRFLOW__MLPIPE__ARTIFACT_STORE"] = str(home / "artifacts")
    (home / "dags").mkdir()
    return home
