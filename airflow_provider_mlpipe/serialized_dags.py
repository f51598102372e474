"""The latest serialized DAG of a pipeline, deserialized once per version and content.

The api-server's endpoints (a selective run, the Selective run tab, lineage) each start from the
pipeline's latest serialized DAG. Airflow's ``DBDagBag.get_latest_version_of_dag`` deserializes it
again at every call: about 7 ms for a pipeline of 100 steps, in every request. Here one query asks
which row is the latest and what its content hash is, and a DAG already deserialized from that row
with that hash is used again. A version rewritten in place (Airflow does that while a version has no
runs) has a new hash, so it is deserialized again: what is served is always what the DB holds now.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Deserialized DAGs kept per api-server process (the most recently used ones).
MAX_KEPT = 32

_kept: OrderedDict[tuple[Any, str], Any] = OrderedDict()
_lock = threading.Lock()  # the api-server runs synchronous endpoints in a thread pool


def latest_serialized_dag(dag_id: str, *, session: Session) -> Any | None:
    """The latest serialized DAG of ``dag_id`` (None if it has none), as Airflow's
    ``DBDagBag().get_latest_version_of_dag`` returns it. Treat it as read-only: it is shared."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    # The same row Airflow's SerializedDagModel.get picks: the highest version number.
    latest = session.execute(
        select(SerializedDagModel.id, SerializedDagModel.dag_hash)
        .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
        .where(SerializedDagModel.dag_id == dag_id)
        .order_by(DagVersion.version_number.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    key = (latest.id, latest.dag_hash)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    row = session.get(SerializedDagModel, latest.id)
    dag = row.dag if row is not None else None
    if dag is None:
        return None
    with _lock:
        _kept[key] = dag
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return dag
