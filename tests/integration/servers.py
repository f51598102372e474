"""Start real Airflow components on 127.0.0.1 for a test or a benchmark, and always stop them.

api-server, scheduler (LocalExecutor) and dag-processor share one SQLite DB in a temporary
``AIRFLOW_HOME``; nothing listens on another interface (the scheduler's and dag-processor's log
servers are not started, unlike ``airflow standalone`` which binds them to 0.0.0.0).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AIRFLOW = [sys.executable, "-m", "airflow"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class AirflowServers:
    """Running Airflow components and how to reach them."""

    home: Path
    dags_folder: Path
    url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # name -> the ``airflow`` arguments that start it (see ``start``).
    commands: dict[str, list[str]] = field(default_factory=dict)
    # Settings of one component only, on top of ``env`` (name -> settings).
    component_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Components killed on purpose (a fault test) and not started again: not a failure.
    killed: set[str] = field(default_factory=set)

    def log(self, name: str) -> str:
        """The output of component ``name`` so far (for failure messages)."""
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def check_alive(self) -> None:
        """Raise, with its log, if a component ended that was not killed on purpose (:meth:`kill`)."""
        for name, process in self.processes.items():
            if process.poll() is not None and name not in self.killed:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}:\n{self.log(name)}")

    def start(self, name: str) -> None:
        """Start component ``name`` (again, after a stop or a kill) with the command it was given; its
        output is appended to ``<home>/<name>.log``, in a process group of its own.

        :param name: a key of ``commands``.
        """
        self.killed.discard(name)
        with open(self.home / f"{name}.log", "ab") as log:
            # cwd=home: a source checkout's build metadata must not be imported twice.
            self.processes[name] = subprocess.Popen(
                [*AIRFLOW, *self.commands[name]],
                env={**self.env, **self.component_env.get(name, {})},
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """SIGKILL component ``name`` and every process of its group, as a crash would, and reap it."""
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        self.killed.add(name)

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command against these components' DB."""
        return subprocess.run(
            [*AIRFLOW, *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def get_token(
    url: str, username: str | None = None, password: str | None = None, timeout: float = 120
) -> str:
    """A token from ``/auth/token``: a user's (username and password), or the one the all-admins auth
    manager hands out without credentials."""
    if username is None:
        request = urllib.request.Request(f"{url}/auth/token")
    else:
        request = urllib.request.Request(
            f"{url}/auth/token",
            method="POST",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
        )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return str(json.load(response)["access_token"])


class RestCalls:
    """JSON calls to the api-server, as a user does with curl: as a user (username and password), or
    with the token that the all-admins auth manager hands out without credentials.

    :param url: the api-server's base URL.
    :param timeout: seconds to wait for each answer.
    :param username: log in as this user (with ``password``); a new token for each call, so that
        tests on servers with short-lived tokens do not see them expire.
    :param password: that user's password.
    """

    def __init__(
        self, url: str, timeout: float = 120, *, username: str | None = None, password: str | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.username = username
        self.password = password
        self.token = get_token(url, username, password, timeout)

    def call(self, method: str, path: str, body: Any = None, *, anonymous: bool = False) -> tuple[int, Any]:
        """``(status, JSON body)``; the body as text when it is not JSON.

        :param anonymous: send no credentials at all.
        """
        headers = {"Content-Type": "application/json"}
        if not anonymous:
            if self.username is not None:
                self.token = get_token(self.url, self.username, self.password, self.timeout)
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, text = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


def server_env(
    home: Path,
    dags_folder: Path,
    port: int,
    extra: Mapping[str, str] | None = None,
    *,
    sqlite_busy_timeout: float | None = 60,
) -> dict[str, str]:
    """The environment shared by every component and by clients that need DB access.

    :param sqlite_busy_timeout: seconds a connection waits for SQLite's lock before failing; None
        leaves SQLite's default (5 s in Python's sqlite3), as a first deployment has it.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    url = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{home / 'airflow.db'}"
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        # Several components (and parallel triggers) write to one SQLite file: wait for the lock
        # longer than SQLite's default 5 s instead of failing the request.
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=database
        if sqlite_busy_timeout is None
        else f"{database}?timeout={sqlite_busy_timeout:g}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=url,
        AIRFLOW__API__WORKERS="1",
        # Every component must sign and check the same task tokens.
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="2",
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.2",
        AIRFLOW__MLPIPE__ARTIFACT_STORE=str(home / "artifacts"),
        AIRFLOW__MLPIPE__API_URL=url,
    )
    env.update(extra or {})
    return env


def use_write_ahead_log(database: Path) -> None:
    """Switch the SQLite file to WAL journaling (a setting kept in the file).

    In SQLite's default journal mode a reader blocks writers; with the api-server, the scheduler and
    parallel triggers all writing, two transactions can each wait for the other until one fails. With
    WAL, readers never block the writer, which is how a shared SQLite file copes with several writers.
    """
    with sqlite3.connect(database) as connection:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"could not switch {database} to WAL journaling (got {mode})")


# A plugin for the test servers only: it records what Airflow tells listeners about each run's end,
# so tests can check what callbacks and other listeners saw, not only the final state.
RECORDING_PLUGIN = """\
import json
import os

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

EVENTS = os.path.join(os.environ["AIRFLOW_HOME"], "dag-run-events.jsonl")


class _Recorder:
    def _write(self, event, dag_run):
        with open(EVENTS, "a") as out:
            out.write(json.dumps({"event": event, "dag_id": dag_run.dag_id, "run_id": dag_run.run_id}) + "\\n")

    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        self._write("success", dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        self._write("failed", dag_run)


class RecordingPlugin(AirflowPlugin):
    name = "test_recorder"
    listeners = [_Recorder()]
"""


def dag_run_events(home: Path, run_id: str) -> list[str]:
    """The run-end events Airflow sent listeners for ``run_id`` (see ``RECORDING_PLUGIN``)."""
    path = home / "dag-run-events.jsonl"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [event["event"] for event in events if event["run_id"] == run_id]


def wait_healthy(servers: AirflowServers, deadline: float) -> None:
    """Wait until the api-server says the scheduler (and dag-processor) are healthy.

    :param deadline: a ``time.monotonic()`` value; TimeoutError (with the logs) after it.
    """
    while time.monotonic() < deadline:
        servers.check_alive()
        try:
            with urllib.request.urlopen(f"{servers.url}/api/v2/monitor/health", timeout=2) as response:
                health = json.load(response)
            if health.get("scheduler", {}).get("status") == "healthy" and health.get("dag_processor", {}).get(
                "status"
            ) in ("healthy", None):
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError(
        f"Airflow did not become healthy:\n{servers.log('api-server')}\n{servers.log('scheduler')}"
    )


def wait_for_dags(
    rest: RestCalls, servers: AirflowServers, dag_ids: Iterable[str], timeout: float = 120
) -> None:
    """Wait until the api-server knows each DAG, i.e. the dag-processor has parsed its file.

    Stops at the first DAG not known yet and checks again a second later, so a module's
    fixture can yield servers whose DAGs the tests may trigger at once.

    :param rest: calls the api-server (as whichever user the servers require).
    :param servers: the running servers; a dead component fails the wait at once.
    :param dag_ids: the DAGs to wait for.
    :param timeout: seconds; an AssertionError with the dag-processor's log after them.
    """
    dag_ids = tuple(dag_ids)
    deadline = time.monotonic() + timeout
    while any(rest.call("GET", f"/api/v2/dags/{dag_id}")[0] != 200 for dag_id in dag_ids):
        assert time.monotonic() < deadline, servers.log("dag-processor")
        servers.check_alive()
        time.sleep(1)


def _stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def user_settings(home: Path, users: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """Settings for the simple auth manager with real users instead of "everyone is admin".

    :param users: user name -> (role, password); roles are the simple auth manager's ``viewer``,
        ``user``, ``op`` and ``admin``. The passwords go in the passwords file Airflow reads (it
        generates passwords only for users missing from it).
    """
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_role, password) in users.items()}))
    return {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, (role, _) in users.items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }


@contextmanager
def airflow_servers(
    home: Path,
    dags_folder: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    start_timeout: float = 180,
    sqlite_busy_timeout: float | None = 60,
    sqlite_wal: bool = True,
    users: Mapping[str, tuple[str, str]] | None = None,
    component_env: Mapping[str, Mapping[str, str]] | None = None,
    extra_commands: Mapping[str, list[str]] | None = None,
) -> Iterator[AirflowServers]:
    """Migrate the DB, start api-server, scheduler and dag-processor, yield, then stop them all.

    :param home: an empty folder to use as ``AIRFLOW_HOME``.
    :param dags_folder: the dags folder the components parse.
    :param extra_env: more settings (``AIRFLOW__...``) for every component.
    :param start_timeout: seconds to wait for a healthy api-server and scheduler.
    :param sqlite_busy_timeout: see :func:`server_env` (None: SQLite's default, as a first deployment).
    :param sqlite_wal: switch the SQLite file to WAL journaling (False: SQLite's default rollback
        journal, as Airflow creates the file).
    :param users: real users (name -> (role, password)) instead of everyone being admin.
    :param component_env: settings for one component only (``"scheduler"``, ``"api-server"``,
        ``"dag-processor"``...) on top of the shared ones.
    :param extra_commands: more components, name -> ``airflow`` arguments (e.g. Celery workers).
    """
    port = free_port()
    plugins = home / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "test_recorder.py").write_text(RECORDING_PLUGIN)
    settings = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        **(user_settings(home, users) if users else {}),
    }
    env = server_env(
        home, dags_folder, port, {**settings, **(extra_env or {})}, sqlite_busy_timeout=sqlite_busy_timeout
    )
    servers = AirflowServers(home=home, dags_folder=dags_folder, url=f"http://127.0.0.1:{port}", env=env)
    migrated = servers.airflow("db", "migrate", timeout=300)
    if migrated.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
    if sqlite_wal:
        use_write_ahead_log(home / "airflow.db")
    servers.component_env = {name: dict(settings) for name, settings in (component_env or {}).items()}
    servers.commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        **{name: list(args) for name, args in (extra_commands or {}).items()},
    }
    try:
        for name in servers.commands:
            servers.start(name)
        wait_healthy(servers, time.monotonic() + start_timeout)
        yield servers
    finally:
        for process in servers.processes.values():
            _stop(process)
