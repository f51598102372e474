"""A small HTTP server on 127.0.0.1 that answers the few api-server paths a start and a read use, and
fails on command: an HTTP 500 "Database error" for the next N calls of a path (as Airflow's api-server
answers when SQLite is locked), or a run created and then the connection dropped before any answer.

It keeps what a real api-server keeps for these tests: the runs by id (a second run with the same id is
refused with 409, as Airflow's unique constraint does), every request received, the tokens it issued.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRIGGER = re.compile(r"^/api/v2/dags/(?P<dag>[^/]+)/dagRuns$")
RUN = re.compile(r"^/api/v2/dags/(?P<dag>[^/]+)/dagRuns/(?P<run>[^/?]+)$")
SELECTIVE = re.compile(r"^/mlpipe/api/v1/pipelines/(?P<dag>[^/]+)/selectiveRuns$")


def jwt_shaped(subject: str, expires_at: float) -> str:
    """A token shaped like a JWT (header.payload.signature) whose payload holds ``exp``."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": subject, "iat": int(time.time()), "exp": int(expires_at)}
    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


@dataclass
class FakeApiState:
    """What the fake api-server holds and how it misbehaves next."""

    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    # path kind ("trigger", "selective", "read") -> how many of the next calls answer 500
    fail_next: dict[str, int] = field(default_factory=dict)
    # path kinds whose next call creates the run, then drops the connection without an answer
    drop_after_create: set[str] = field(default_factory=set)
    token_lifetime: float = 3600.0
    issued: list[str] = field(default_factory=list)
    rejected_tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, method: str, pattern: re.Pattern[str]) -> list[Any]:
        return [body for verb, path, body in self.requests if verb == method and pattern.match(path)]


def run_response(dag_id: str, run_id: str, conf: dict[str, Any], note: str | None) -> dict[str, Any]:
    """A DAG run as the REST API v2 returns it (the fields the client's model requires)."""
    return {
        "dag_id": dag_id,
        "dag_display_name": dag_id,
        "dag_run_id": run_id,
        "dag_versions": [],
        "run_after": "2026-01-01T00:00:00Z",
        "run_type": "manual",
        "state": "queued",
        "conf": conf,
        "note": note,
    }


class _Handler(BaseHTTPRequestHandler):
    state: FakeApiState

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without answering, as a crashed proxy or a network cut does."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _authorized(self) -> bool:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.state.issued or token in self.state.rejected_tokens:
            self._answer(401, {"detail": "Invalid JWT token"})
            return False
        return True

    def _failing(self, kind: str) -> bool:
        with self.state.lock:
            if self.state.fail_next.get(kind, 0) > 0:
                self.state.fail_next[kind] -= 1
                failing = True
            else:
                failing = False
        if failing:
            self._answer(500, {"reason": "Database error", "statement": "database is locked"})
        return failing

    def _issue_token(self) -> None:
        token = jwt_shaped(f"user-{len(self.state.issued)}", time.time() + self.state.token_lifetime)
        self.state.issued.append(token)
        self._answer(201, {"access_token": token})

    def do_GET(self) -> None:  # noqa: N802 - the name BaseHTTPRequestHandler calls
        self.state.requests.append(("GET", self.path, None))
        if self.path == "/auth/token":
            return self._issue_token()
        if not self._authorized() or self._failing("read"):
            return None
        match = RUN.match(self.path)
        run = self.state.runs.get((match["dag"], urllib.parse.unquote(match["run"]))) if match else None
        if run is None:
            return self._answer(404, {"detail": "not found"})
        return self._answer(200, run)

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        self.state.requests.append(("POST", self.path, body))
        if self.path == "/auth/token":
            return self._issue_token()
        if not self._authorized():
            return None
        trigger, selective = TRIGGER.match(self.path), SELECTIVE.match(self.path)
        kind = "trigger" if trigger else "selective" if selective else None
        match = trigger or selective
        if kind is None or match is None:
            return self._answer(404, {"detail": "not found"})
        if self._failing(kind):
            return None
        dag_id = match["dag"]
        run_id = body.get("dag_run_id") or body.get("run_id") or f"manual__{len(self.state.runs)}"
        conf = body.get("conf") if kind == "trigger" else {"selected_steps": body["selected_steps"]}
        with self.state.lock:
            existing = self.state.runs.get((dag_id, run_id))
            if existing is None:
                self.state.runs[(dag_id, run_id)] = run_response(dag_id, run_id, conf, body.get("note"))
        if existing is not None and kind == "trigger":
            return self._answer(409, {"reason": "Unique constraint violation"})
        if existing is not None and existing["conf"] != conf:  # the plugin: another request's run id
            return self._answer(409, {"detail": "made by another request"})
        if kind in self.state.drop_after_create:
            self.state.drop_after_create.discard(kind)
            return self._drop()
        return self._answer(200, {**self.state.runs[(dag_id, run_id)], "run_id": run_id})


@contextmanager
def fake_api_server() -> Iterator[tuple[str, FakeApiState]]:
    """Serve on a free port of 127.0.0.1 in a thread; yield ``(url, state)``; always shut down."""
    state = FakeApiState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
