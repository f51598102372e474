"""An S3-compatible server on 127.0.0.1 for the tests and the benchmark: moto, one request at a time.

Run as a script: ``python s3_server.py`` prints ``READY <port>`` once it listens, then serves until
it is terminated or its standard input closes (its parent ended). Start it with
:func:`start_s3_server`, which always stops it.

Why one request at a time: S3 makes a conditional write (``If-None-Match``, ``If-Match``) atomic with
the write itself. moto checks the condition, then writes, without a lock between the two; served one
request at a time (werkzeug's non-threaded server), its check-then-write is atomic as S3's is, so the
concurrency tests test our code against S3's semantics, not against a race inside the test server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler)
    # The parent holds our stdin open: when it ends, even killed or crashed, the server ends too.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


@contextlib.contextmanager
def start_s3_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """Start the server in a subprocess; yield its endpoint URL; stop it whatever happens.

    :param env: extra environment for the server (e.g. moto settings).
    """
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the S3 test server did not start (it said {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
