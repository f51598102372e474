"""Running a step's script: its environment, its output in the task log, its failure reason.

Processing and training steps run their scripts as subprocesses through :func:`run_script`; what the
script sees of the worker's environment is decided in :mod:`airflow_provider_mlpipe.operators.script_env`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_mlpipe.exceptions import StepExecutionError

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator


def env_name(name: str) -> str:
    """``train-data`` -> ``TRAIN_DATA``: an input or output name as an environment variable suffix."""
    return "".join(char if char.isalnum() else "_" for char in name).upper()


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value replaced by ``***``, as Airflow's masker does in logs (a failure
    reason also goes to an XCom and a task note, which the masker does not see)."""
    for secret in sorted({value for value in secrets if value}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def run_script(
    operator: BaseOperator,
    command: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    pass_env: Sequence[str] = (),
    secrets: Sequence[str] = (),
) -> None:
    """Run a step's script, streaming its output to the task log; non-zero exit fails the step.

    The script sees a scrubbed environment (:mod:`airflow_provider_mlpipe.operators.script_env`): a safe
    base, ``env``, and the worker's variables named in ``pass_env``. The error of a failed script ends
    with the last lines of its output (stdout and stderr merged): that is where a script says what went
    wrong, and it becomes the step's failure reason.

    :param env: variables the step sets (inputs, outputs, its ``env:``).
    :param pass_env: variables of the worker's environment the step asks for (``NAME``, ``PREFIX*``).
    :param secrets: values to keep out of the log and of the failure reason (secret parameters).
    """
    import subprocess
    from collections import deque

    from airflow.sdk.log import mask_secret

    from airflow_provider_mlpipe.operators.failures import SCRIPT_TAIL_CHARS, SCRIPT_TAIL_LINES, script_tail
    from airflow_provider_mlpipe.operators.script_env import script_environment

    full_env, passed_secrets = script_environment(env, pass_env)
    hidden = [*secrets, *passed_secrets]
    for value in passed_secrets:
        mask_secret(value)  # the script may print it: the task log shows *** instead
    shown = redact(" ".join(command), hidden)
    operator.log.info("Running: %s", shown)
    tail: deque[str] = deque(maxlen=SCRIPT_TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            operator.log.info("%s", line.rstrip())
            tail.append(redact(line.rstrip(), hidden)[:SCRIPT_TAIL_CHARS])
        code = process.wait()
    if code != 0:
        raise StepExecutionError(f"{shown} exited with code {code}" + script_tail(tail))
