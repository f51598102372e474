"""The one pandas internal the artifact store uses: pandas' own Arrow-to-DataFrame conversion.

``pandas.read_parquet`` reads a whole Arrow table, then converts it with
``pandas.io._util.arrow_table_to_pandas`` (string dtype inference, dtype backends, time zone
normalisation). The store reads the table row group by row group instead, to bound memory, and then
converts it exactly as ``read_parquet`` would, through that function. Where a pandas version no
longer has it, Arrow's public ``Table.to_pandas`` is used; ``tests/artifacts/test_arrays.py`` checks
that the result still equals ``pandas.read_parquet``'s, so an upgrade that changes either fails there.
"""

from __future__ import annotations

import json
from typing import Any

# Columns in blocks of their own: no consolidation copy, and single-chunk numeric columns are
# converted without a copy. (Not self_destruct: it frees buffers that pandas' Arrow-backed string
# columns still use.)
LOW_MEMORY = {"split_blocks": True}


def table_to_pandas(table: Any) -> Any:
    """The DataFrame of an Arrow table read from parquet, as ``pandas.read_parquet`` makes it.

    :param table: a ``pyarrow.Table`` with its pandas metadata.
    """
    try:
        from pandas.io._util import arrow_table_to_pandas
    except ImportError:  # pragma: no cover - a pandas without it: Arrow's public conversion
        frame = table.to_pandas(**LOW_MEMORY)
    else:
        frame = arrow_table_to_pandas(table, to_pandas_kwargs=dict(LOW_MEMORY))
    metadata = table.schema.metadata or {}
    if b"PANDAS_ATTRS" in metadata:
        frame.attrs = json.loads(metadata[b"PANDAS_ATTRS"])
    return frame
