"""Logs of local runs: each task's log goes where Airflow puts it, and Airflow's chatter stays off the console.

On a worker, Airflow's supervisor writes each try of a task to ``[logging] base_log_folder`` /
``[logging] log_filename_template`` (``dag_id=.../run_id=.../task_id=.../attempt=N.log``) as JSON lines,
where the api-server (and so the Airflow UI) reads them. A local run executes its tasks in this
process, where log events go wherever the process's logging sends them: the console. So, in local mode:

- :func:`task_log` sends every log event of the thread running a task (structlog and stdlib
  ``logging``) to that try's file, rendered by the processors Airflow's supervisor renders task log
  files with;
- :func:`console` keeps those events, and Airflow's own INFO logs, off the console for the length of
  a local-mode call unless it is verbose (warnings and errors outside tasks still show).

Both work through two hooks installed once: a structlog processor put first in the configured
processor list (changed in place, as Airflow's own ``suppress_logs_and_warning`` does, because loggers
bound earlier keep that list), and a handler plus a filter on the root stdlib logger. Outside local
mode calls the hooks let everything through unchanged.

Airflow internals used here, and checked by ``tests/test_local_logs.py`` so that an Airflow upgrade that
changes them fails loudly: ``airflow.utils.helpers.log_filename_template_renderer`` (the path the
executor gives a worker), ``airflow.sdk.log.init_log_file`` and ``airflow.sdk.log.logging_processors``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from airflow.models.taskinstance import TaskInstance

# structlog method names -> stdlib levels ("exception" logs at error level).
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# What a quiet console still shows of events outside tasks.
QUIET_CONSOLE_LEVEL = logging.WARNING


class _Routing:
    """Where log events go right now. Process-wide, as logging is."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.quiet_calls = 0  # local-mode calls in progress that keep the console quiet
        self.verbose_calls = 0  # ... that show everything (verbose wins)
        self.task_thread: int | None = None
        self.task_file: BinaryIO | None = None

    def in_task(self) -> bool:
        return self.task_file is not None and threading.get_ident() == self.task_thread

    def keeps_off_console(self, level: int, in_task: bool) -> bool:
        """Whether an event stays off the console: a task's events (they are in its file) and
        Airflow's INFO logs, while a quiet local-mode call is in progress."""
        if self.verbose_calls or not self.quiet_calls:
            return False
        return in_task or level < QUIET_CONSOLE_LEVEL


_ROUTING = _Routing()


def _file_processors() -> tuple[Any, ...]:
    """The processors Airflow's supervisor writes task log files with (JSON lines, as bytes)."""
    from airflow.sdk.log import logging_processors

    return tuple(logging_processors(json_output=True))


def _write_to_task_file(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> None:
    import structlog

    task_file = _ROUTING.task_file
    if task_file is None:
        return
    try:
        rendered: Any = event_dict
        for processor in _file_processors():
            rendered = processor(logger, method_name, rendered)
        line = rendered if isinstance(rendered, bytes) else str(rendered).encode()
        task_file.write(line + b"\n")
        task_file.flush()
    except structlog.DropEvent:
        pass
    except Exception:  # a log line that cannot be written must not fail the task
        pass


def _route_structlog_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """First structlog processor: copy a task's events to its file; keep events off a quiet console."""
    import structlog

    in_task = _ROUTING.in_task()
    if in_task:
        _write_to_task_file(logger, method_name, dict(event_dict))
    if _ROUTING.keeps_off_console(_LEVELS.get(method_name, logging.INFO), in_task):
        raise structlog.DropEvent
    return event_dict


class _TaskFileHandler(logging.Handler):
    """Copies the stdlib log records of the thread running a task to the task's file."""

    def emit(self, record: logging.LogRecord) -> None:
        if not _ROUTING.in_task():
            return
        event: dict[str, Any] = {"event": record.getMessage(), "logger_name": record.name}
        if record.exc_info:
            event["exc_info"] = record.exc_info
        _write_to_task_file(None, record.levelname.lower(), event)


class _QuietConsoleFilter(logging.Filter):
    """On the console's stdlib handlers: drops what a quiet local-mode call keeps off the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _ROUTING.keeps_off_console(record.levelno, _ROUTING.in_task())


_HANDLER = _TaskFileHandler()
_FILTER = _QuietConsoleFilter()


def _install_hooks() -> None:
    """Put the hooks in place (again, if Airflow's logging was configured anew since)."""
    import airflow  # noqa: F401  (importing Airflow configures its logging; the hooks go on top)
    import structlog

    processors = structlog.get_config()["processors"]
    if _route_structlog_event not in processors:
        if isinstance(processors, list):
            processors.insert(0, _route_structlog_event)
        else:
            structlog.configure(processors=[_route_structlog_event, *processors])
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    for handler in root.handlers:
        if handler is not _HANDLER and _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


@contextmanager
def console(*, verbose: bool) -> Iterator[None]:
    """For the length of a local-mode call: task logs and Airflow's own INFO logs off the console,
    unless ``verbose``.

    :param verbose: show everything, as Airflow logs it (``mlpipe -v``, ``LocalSession(verbose=True)``).
    """
    with _ROUTING.lock:
        _install_hooks()
        if verbose:
            _ROUTING.verbose_calls += 1
        else:
            _ROUTING.quiet_calls += 1
    try:
        yield
    finally:
        with _ROUTING.lock:
            if verbose:
                _ROUTING.verbose_calls -= 1
            else:
                _ROUTING.quiet_calls -= 1


def task_log_path(ti: TaskInstance) -> Path:
    """Where Airflow keeps the log of ``ti``'s current try: the path a worker would write.

    :param ti: the task instance, with its try number already set for this try.
    """
    from airflow.configuration import conf
    from airflow.utils.helpers import log_filename_template_renderer

    relative = log_filename_template_renderer()(ti=ti, try_number=ti.try_number)
    return Path(conf.get("logging", "base_log_folder"), relative)


@contextmanager
def task_log(ti: TaskInstance) -> Iterator[Path]:
    """Write the log events of this thread to the log file of ``ti``'s current try; yield its path.

    The file is created as Airflow creates task log files (folders and permissions from ``[logging]``)
    and appended to, as a worker does when a deferred task resumes.
    """
    from airflow.configuration import conf
    from airflow.sdk.log import init_log_file

    relative = task_log_path(ti).relative_to(conf.get("logging", "base_log_folder"))
    path = init_log_file(str(relative))
    with path.open("ab") as handle:
        with _ROUTING.lock:
            _install_hooks()
            previous = (_ROUTING.task_thread, _ROUTING.task_file)
            _ROUTING.task_thread, _ROUTING.task_file = threading.get_ident(), handle
        try:
            yield path
        finally:
            with _ROUTING.lock:
                _ROUTING.task_thread, _ROUTING.task_file = previous
