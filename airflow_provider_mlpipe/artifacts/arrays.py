"""numpy arrays and pandas DataFrames: written straight into the store, read without extra copies.

Writing serializes into the store's :class:`~.store.BlobWriter`, which hashes while it writes: one
pass over the bytes, no intermediate file. Reading a ``.npy`` blob from the local store maps the blob
(copy-on-write) after hashing the map, so the array's memory *is* the page cache, verified; from S3
the array is allocated once and filled from the stream while it is hashed. A parquet blob is read
by pyarrow from a verified local file (the blob itself, or a download), row group by row group, and
converted with ``self_destruct`` so Arrow's buffers are freed as the frame is built.

The ``.npy`` bytes are exactly those of ``numpy.save`` (``numpy.lib.format.write_array``), so an
array stored by an earlier version has the same digest.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
from airflow_provider_mlpipe.artifacts.store import CHUNK_SIZE, ArtifactStore
from airflow_provider_mlpipe.exceptions import ArtifactError


def save_numpy(store: ArtifactStore, array: Any, metadata: dict[str, Any]) -> ArtifactRef:
    """Store an ndarray (not of dtype object) as ``.npy``.

    :param store: the artifact store.
    :param array: the array.
    :param metadata: more metadata for the reference (dtype and shape are added).
    """
    from numpy.lib import format as npy

    with store.blob_writer() as writer:
        npy.write_array(writer, array, allow_pickle=False)
        blob = writer.commit()
    metadata = {**metadata, "dtype": array.dtype.str, "shape": list(array.shape)}
    return ArtifactRef(blob.uri, blob.digest, "numpy", blob.size, metadata)


def load_numpy(store: ArtifactStore, ref: ArtifactRef) -> Any:
    """The ndarray of a ``.npy`` artifact, verified; writable (changes stay in this process).

    :param store: the artifact store.
    :param ref: the artifact's reference.
    """
    import numpy

    mapped = store.map_blob(ref.digest)
    if mapped is not None:
        # mmap objects are file-like: the header is parsed in place, the data is never copied.
        stream = mapped if hasattr(mapped, "seek") else _BufferStream(mapped)
        shape, fortran, dtype = _read_header(stream, ref)
        return numpy.ndarray(shape, dtype, buffer=mapped, offset=stream.tell(), order="F" if fortran else "C")
    with store.open_blob(ref.digest) as reader:
        try:
            shape, fortran, dtype = _read_header(reader, ref)
            declared = math.prod(shape) * dtype.itemsize
            if declared != ref.size - reader.size:
                raise ArtifactError(
                    f"numpy artifact {ref.uri}: its header declares {declared} bytes of data, "
                    f"the artifact holds {ref.size - reader.size}"
                )
        except ArtifactError:
            # Not read as an array yet: if the bytes are not the artifact's, say that instead.
            reader.verify()
            raise
        array = numpy.empty(shape, dtype, order="F" if fortran else "C")
        # The array's own memory, byte by byte, in the order the file holds it (C or Fortran).
        flat: Any = array.reshape(-1, order="A")
        view = memoryview(flat).cast("B") if array.size else memoryview(b"")
        filled = 0
        while filled < len(view):
            count = reader.readinto(view[filled : filled + CHUNK_SIZE])
            if not count:
                break
            filled += count
        reader.verify()  # after the whole blob is read: truncated or altered bytes fail here
    return array


def _read_header(stream: Any, ref: ArtifactRef) -> tuple[tuple[int, ...], bool, Any]:
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = npy.read_array_header_2_0(stream)
    except ValueError as error:
        raise ArtifactError(f"numpy artifact {ref.uri} is not a valid .npy file: {error}") from None
    if dtype.hasobject:
        raise ArtifactError(f"numpy artifact {ref.uri} holds Python objects; it is not loaded")
    return shape, fortran, dtype


class _BufferStream:
    """A read-only file-like view of a buffer, for parsing a header in place."""

    def __init__(self, buffer: Any) -> None:
        self._view = memoryview(buffer)
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._position + size
        data = bytes(self._view[self._position : end])
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position


def save_pandas(store: ArtifactStore, frame: Any, metadata: dict[str, Any]) -> ArtifactRef:
    """Store a DataFrame as parquet (pyarrow).

    :param store: the artifact store.
    :param frame: the DataFrame (string column names).
    :param metadata: more metadata for the reference (rows and columns are added).
    """
    with store.blob_writer() as writer:
        frame.to_parquet(writer, engine="pyarrow")
        blob = writer.commit()
    metadata = {**metadata, "rows": int(frame.shape[0]), "columns": int(frame.shape[1])}
    return ArtifactRef(blob.uri, blob.digest, "pandas", blob.size, metadata)


def load_pandas(store: ArtifactStore, ref: ArtifactRef) -> Any:
    """The DataFrame of a parquet artifact, verified.

    The parquet file is read one row group at a time into an Arrow table. Numeric columns are then
    joined into one chunk each, one column at a time (the old chunks are freed at once), so that
    their conversion to pandas is zero-copy; string columns stay Arrow-backed, also without a copy.
    The table is converted as ``pandas.read_parquet`` converts it (:mod:`.pandas_internal`).
    Meanwhile Arrow allocates from a pool that returns freed memory to the system at once: the peak
    stays near one frame plus one column.

    :param store: the artifact store.
    :param ref: the artifact's reference.
    """
    import pyarrow
    import pyarrow.parquet as parquet

    from airflow_provider_mlpipe.artifacts.pandas_internal import table_to_pandas

    with store.blob_path(ref.digest) as path, _returning_memory_pool(pyarrow):
        return table_to_pandas(_read_table(pyarrow, parquet, path))


ROWS_PER_BATCH = 1024 * 1024


def _read_table(pyarrow: Any, parquet: Any, path: Any) -> Any:
    """The parquet file as a table, each numeric column in one chunk (see :func:`load_pandas`).

    Only this function holds the table while its columns are joined, so each replaced column's
    chunks are freed right away.
    """
    import pyarrow.types as types

    source = parquet.ParquetFile(path, pre_buffer=False)
    try:
        batches = source.iter_batches(batch_size=ROWS_PER_BATCH, use_pandas_metadata=True)
        table = pyarrow.Table.from_batches(batches, schema=source.schema_arrow)
    finally:
        source.close()
    for index, field in enumerate(table.schema):
        kind = field.type
        numeric = types.is_integer(kind) or types.is_floating(kind)
        if table.column(index).num_chunks > 1 and (
            numeric or types.is_timestamp(kind) or types.is_duration(kind)
        ):
            joined = pyarrow.chunked_array([table.column(index).combine_chunks()], type=kind)
            table = table.set_column(index, field, joined)  # the old table, and its chunks, go
    return table


@contextlib.contextmanager
def _returning_memory_pool(pyarrow: Any) -> Iterator[None]:
    """Inside the block Arrow allocates from a pool that gives freed memory back to the system at
    once: jemalloc with a decay of 0 where pyarrow has it, else the system allocator. The default
    pool is restored afterwards; buffers remember their pool, so they are freed correctly later.
    """
    try:
        pyarrow.jemalloc_set_decay_ms(0)  # first: it applies to the arenas created after it
        pool = pyarrow.jemalloc_memory_pool()
    except (NotImplementedError, AttributeError):
        pool = pyarrow.system_memory_pool()
    previous = pyarrow.default_memory_pool()
    pyarrow.set_memory_pool(pool)
    try:
        yield
    finally:
        pyarrow.set_memory_pool(previous)
