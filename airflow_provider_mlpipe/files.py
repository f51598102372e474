"""Small files written whole: a reader in another process sees the old file or the new one, never a
part of one. What the provider keeps beside its main data (content-digest memos, local-run driver
records, parse cache entries) is written this way; artifacts stream through the store's own writer."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_whole(path: Path, data: bytes, *, temp_prefix: str = ".tmp-", folder_mode: int = 0o777) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed over it.

    The temporary file (named ``temp_prefix...``, ``0600`` as ``mkstemp`` makes it) is removed when
    anything fails; a process killed mid-write leaves it, so callers that sweep look for the prefix.

    :param folder_mode: the mode of folders created on the way (as ``Path.mkdir``).
    :raises OSError: the folder or the file cannot be written.
    """
    path.parent.mkdir(mode=folder_mode, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix)
    try:
        with os.fdopen(fd, "wb") as output:
            output.write(data)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)  # still there only if something failed
