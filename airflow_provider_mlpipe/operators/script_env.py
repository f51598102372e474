"""The environment a step's script runs in: a safe base, what the step asks for, nothing else.

A worker's environment holds its secrets: the metadata DB connection and fernet key
(``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, ``AIRFLOW__CORE__FERNET_KEY``), the JWT secret, connections
(``AIRFLOW_CONN_*``), cloud credentials (``AWS_*``), and whatever else a deployment puts there under
names no list can foresee. So the base is an allow-list, not a deny-list: a variable reaches a script
only if it is one a program needs to run at all (``PATH``, ``HOME``, the locale, the virtualenv, thread
counts, CA bundles), is the step's own contract (``MLPIPE_*`` but the API credentials, ``SM_*``), or is
named by the step (``pass_env: [NAME, PREFIX*]``) or by the provider's ``[mlpipe] script_pass_env`` for
every step. Values a step sets (``env:``) are always passed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence

# What any program may need to start and behave as on the worker; none of it is a credential.
BASE_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "HOSTNAME",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONHASHSEED",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
    }
)
# Prefixes of the same kind: the locale, BLAS settings (some CPUs need OPENBLAS_CORETYPE), the step
# contract, the task context Airflow exports (dag, task and run ids: not secrets), GPU runtimes.
BASE_PREFIXES = ("LC_", "OPENBLAS_", "MLPIPE_", "SM_", "AIRFLOW_CTX_", "NVIDIA_")
# Credentials of the provider's own REST client: MLPIPE_ by name, but never a script's business.
NEVER_PASSED = frozenset({"MLPIPE_API_TOKEN", "MLPIPE_API_USERNAME", "MLPIPE_API_PASSWORD"})
# Words that make a variable's value a secret to keep out of logs (as Airflow's masker judges names).
SENSITIVE_WORDS = ("password", "passwd", "secret", "token", "key", "credential", "auth", "private", "dsn")


def in_base(name: str) -> bool:
    """Whether a script sees ``name`` from the worker's environment without asking for it."""
    if name in NEVER_PASSED:
        return False
    return name in BASE_VARIABLES or name.startswith(BASE_PREFIXES)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` (``NAME`` or ``PREFIX*``)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def looks_sensitive(name: str) -> bool:
    """Whether a variable's name says its value is a credential (``AWS_SECRET_ACCESS_KEY``, ``HF_TOKEN``)."""
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


def provider_pass_env() -> list[str]:
    """``[mlpipe] script_pass_env``: variables (``NAME``, ``PREFIX*``) every step's script sees."""
    from airflow_provider_mlpipe.settings import mlpipe_option

    return [item.strip() for item in mlpipe_option("script_pass_env").split(",") if item.strip()]


def script_environment(
    step_env: Mapping[str, str],
    pass_env: Sequence[str],
    *,
    worker_env: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """The environment of a step's script, and the values in it to keep out of logs.

    :param step_env: variables the step sets (inputs, outputs, ``env:``); always passed.
    :param pass_env: variables of the worker's environment the step asks for (``NAME``, ``PREFIX*``).
    :param worker_env: the worker's environment (default ``os.environ``).
    :returns: ``(environment, secrets)``: the passed values whose names look like credentials.
    """
    worker = os.environ if worker_env is None else worker_env
    asked = [*pass_env, *provider_pass_env()]
    environment = {name: value for name, value in worker.items() if in_base(name) or matches(name, asked)}
    secrets = [
        value
        for name, value in environment.items()
        if matches(name, asked) and looks_sensitive(name) and value
    ]
    environment.update(step_env)
    environment["PYTHONUNBUFFERED"] = "1"  # the task log gets each line as it is printed
    return environment, secrets
