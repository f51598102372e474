"""A step's fingerprint: one answer to "would this step compute the same thing again?".

Selective execution, step caching and lineage all ask this module, so that they can never disagree
on what "unchanged" means. A step's fingerprint is the sha256 of:

- its **digest**: its canonical definition and the content of its code (the script or function file,
  the project-local modules they import, found with ``ast``, and the files it declares with
  ``code_files``; see :mod:`.code`). Computed wherever the DAG is built (the DAG processor, a worker,
  local mode), and carried by each step task's manifest in the serialized DAG;
- the values of the **parameters** it reads (not the others: changing a parameter a step does not read
  leaves its fingerprint alone), and of the **execution variables** it reads (``execution_id`` makes
  every run different, as it should);
- the content digests of its **inputs**: each upstream artifact's digest as recorded when it was
  written (never recomputed by reading data), and each literal input's (a local file or folder, an S3
  object or prefix) content digest, remembered by identity so that a large file is hashed once
  (:mod:`.inputs`).

A step's record keeps the parts (``digest``, ``code_digest``, ``code_files``, ``parameters``,
``inputs``) beside the ``fingerprint``, so :func:`differences` can say *what* changed: a code file, an
input file, a parameter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mlpipe.fingerprint.code import CodeInventory, callable_file, module_file, remembered

if TYPE_CHECKING:
    from airflow_provider_mlpipe.model.steps import Step

FINGERPRINT_VERSION = 1
ARTIFACT_INPUT = "artifact"
LITERAL_INPUT = "literal"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _roots(step: Step) -> list[Path | None]:
    from airflow_provider_mlpipe.settings import dags_folder

    scripts = [path.parent for path in step.code_files()]
    function = getattr(step, "function", None)
    own = callable_file(function) if callable(function) else None
    return [*scripts, own.parent if own else None, step.base_dir, dags_folder()]


def dependency_files(step: Step, scripts: list[Path] | None = None) -> dict[str, str]:
    """The code files of ``step`` beyond its script: project-local modules imported by its script or
    function file, a ``"module:function"``'s own module, and its declared ``code_files``; name -> sha256
    hex (``"missing"`` for a declared file that is gone).

    :param scripts: ``step.code_files()`` if the caller has it already.
    """
    from airflow_provider_mlpipe.settings import dags_folder

    function = getattr(step, "function", None)
    # What the answer depends on: the steps of a folder's pipelines mostly share a few scripts and
    # modules, so one parse (see ``remembered_lookups``) walks each set of imports once.
    key = (
        "dependencies",
        tuple(step.code_files() if scripts is None else scripts),
        function,
        step.base_dir,
        tuple(getattr(step, "declared_code_files", [])),
        dags_folder(),
    )
    try:
        hash(key)
    except TypeError:  # an unhashable callable: nothing to share
        return _dependency_files(step)
    return dict(remembered(key, lambda: _dependency_files(step)))


def _dependency_files(step: Step) -> dict[str, str]:
    roots = _roots(step)
    inventory = CodeInventory(roots)
    for script in step.code_files():
        inventory.add_file(script, record=False)  # in the digest already, under its file name
    function = getattr(step, "function", None)
    if callable(function):
        own = callable_file(function)
        if own is not None:
            inventory.add_file(own, record=False)  # the function's own source is in its definition
    elif isinstance(function, str) and not function.partition(":")[0].endswith(".py"):
        found = module_file(function.partition(":")[0], [step.base_dir, roots[-1]])
        if found is not None:
            inventory.add_file(found)
    inventory.add_declared(getattr(step, "declared_code_files", []), step.base_dir)
    return inventory.files


def code_inventory(step: Step) -> dict[str, str]:
    """Every code file of ``step`` (its script by file name, then :func:`dependency_files`) -> sha256 hex."""
    files = {
        path.name: (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing")
        for path in step.code_files()
    }
    return {**files, **dependency_files(step)}


def code_digest(inventory: Mapping[str, str]) -> str:
    """One digest for a step's code files."""
    return "sha256:" + hashlib.sha256(_canonical(dict(inventory))).hexdigest()


def step_digest(step: Step) -> str:
    """sha256 of the step's definition and the content of its code files."""
    return step_digest_and_code(step)[0]


def step_digest_and_code(step: Step) -> tuple[str, dict[str, str]]:
    """The step's digest and its code inventory (see :func:`code_inventory`), reading each file once.

    The script's bytes are hashed as before dependencies were tracked, and dependencies are added only
    when there are some: a step whose script imports nothing of the project keeps its digest.
    """
    hasher = hashlib.sha256(json.dumps(step.definition(), sort_keys=True, default=str).encode())
    inventory: dict[str, str] = {}
    scripts = step.code_files()
    for path in scripts:
        data: bytes | None = remembered(("script bytes", path), partial(_bytes_or_none, path))
        hasher.update(str(path.name).encode())
        hasher.update(data if data is not None else b"<missing>")
        inventory[path.name] = hashlib.sha256(data).hexdigest() if data is not None else "missing"
    dependencies = dependency_files(step, scripts)
    for name, digest in sorted(dependencies.items()):
        hasher.update(b"\0code_file\0" + name.encode() + b"\0" + digest.encode())
    return "sha256:" + hasher.hexdigest(), {**inventory, **dependencies}


def _bytes_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


@dataclass(frozen=True)
class StepFingerprint:
    """The parts of a step's fingerprint, as one run of it sees them.

    :param digest: the step's digest (definition and code).
    :param code_digest: the digest of its code files alone.
    :param code_files: each code file's sha256 hex, by name.
    :param parameters: the values of the parameters it reads.
    :param execution: the values of the execution variables it reads.
    :param inputs: each input (``Step.output`` for an upstream artifact, the field for a literal
        input) with at least its ``digest`` and ``kind`` (``artifact`` or ``literal``).
    """

    digest: str
    code_digest: str
    code_files: Mapping[str, str] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    execution: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def value(self) -> str:
        """``sha256:<hex>``: the fingerprint itself (the cache key)."""
        return fingerprint_of(self.digest, self.parameters, self.execution, self.inputs)

    def to_record(self) -> dict[str, Any]:
        """The fields a step record keeps (see :func:`differences`)."""
        return {
            "fingerprint": self.value,
            "code_digest": self.code_digest,
            "code_files": dict(self.code_files),
            "execution": dict(self.execution),
            "inputs": {name: dict(item) for name, item in self.inputs.items()},
        }


def fingerprint_of(
    digest: str,
    parameters: Mapping[str, Any],
    execution: Mapping[str, Any],
    inputs: Mapping[str, Mapping[str, Any]],
) -> str:
    """The fingerprint of these parts (what :attr:`StepFingerprint.value` is)."""
    document = {
        "v": FINGERPRINT_VERSION,
        "digest": digest,
        "parameters": dict(parameters),
        "execution": dict(execution),
        "inputs": {name: str(item.get("digest")) for name, item in inputs.items()},
    }
    return "sha256:" + hashlib.sha256(_canonical(document)).hexdigest()


def describe_input(name: str, item: Mapping[str, Any]) -> str:
    """How a message names an input: ``input file data/x.csv (inputs.raw)`` or ``output train of step P``."""
    if item.get("kind") == ARTIFACT_INPUT:
        return f"output {item.get('output')} of step {item.get('step')}"
    what = "folder" if item.get("type") == "directory" else "file"
    return f"input {what} {item.get('location')} ({name})"


def code_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """``code file x.py changed`` / ``is new`` / ``is gone`` for each file that differs."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(f"code file {name} is new")
        elif name not in after or after[name] == "missing":
            changes.append(f"code file {name} is gone")
        elif before[name] != after[name]:
            changes.append(f"code file {name} changed")
    return changes


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between a step's record and its current parts (both as in a step record): a
    code file, the definition, a parameter, an execution variable, an input's content.

    Parts a record lacks (written before fingerprints existed) are not compared.
    """
    changes: list[str] = []
    if recorded.get("digest") != current.get("digest"):
        before, after = recorded.get("code_files"), current.get("code_files")
        named = (
            code_changes(before, after) if isinstance(before, Mapping) and isinstance(after, Mapping) else []
        )
        changes.extend(named or ["its definition or code changed"])
    old_parameters = recorded.get("parameters") or {}
    new_parameters = current.get("parameters") or {}
    for name in sorted(old_parameters):
        if name in new_parameters and new_parameters[name] != old_parameters[name]:
            changes.append(f"parameter {name} was {old_parameters[name]!r}, now {new_parameters[name]!r}")
    old_execution = recorded.get("execution") or {}
    for name, value in sorted((current.get("execution") or {}).items()):
        if name in old_execution and old_execution[name] != value:
            changes.append(f"execution variable {name} was {old_execution[name]!r}, now {value!r}")
    old_inputs, new_inputs = recorded.get("inputs"), current.get("inputs")
    if isinstance(old_inputs, Mapping) and isinstance(new_inputs, Mapping):
        for name in sorted(set(old_inputs) | set(new_inputs)):
            before_item, after_item = old_inputs.get(name) or {}, new_inputs.get(name) or {}
            if before_item.get("digest") != after_item.get("digest"):
                described = describe_input(name, after_item or before_item)
                changes.append(
                    f"{described} changed since (content {_short(before_item)} -> {_short(after_item)})"
                )
    return changes


def _short(item: Mapping[str, Any]) -> str:
    digest = item.get("digest")
    return str(digest).removeprefix("sha256:")[:12] if digest else "none"


__all__ = [
    "ARTIFACT_INPUT",
    "LITERAL_INPUT",
    "StepFingerprint",
    "code_changes",
    "code_digest",
    "code_inventory",
    "dependency_files",
    "describe_input",
    "differences",
    "fingerprint_of",
    "step_digest",
    "step_digest_and_code",
    "step_sources",
]


# How many characters of each code file's digest the serialized DAG carries (enough to tell versions
# apart in a message; the step's full digest decides).
SHORT_DIGEST = 16
# Airflow truncates a template field longer than [core] max_templated_field_length (4096 by default):
# a manifest of sources larger than this drops its per-file details.
MAX_SOURCES_CHARS = 3500


def sources_manifest(step: Step, code_files: Mapping[str, str]) -> dict[str, Any]:
    """What the serialized DAG says of a step's sources, for the planner of selective runs: its code
    files (short digests) and the content digests of its literal local inputs, as the DAG processor saw
    them when it parsed the DAG. An S3 input or one given through a parameter is None: it is checked
    when the run's steps start (see :mod:`airflow_provider_mlpipe.selective.verify`)."""
    from airflow_provider_mlpipe.fingerprint.inputs import LocalDigests, local_path

    literal: dict[str, str | None] = {}
    for name, source in literal_sources(step).items():
        digest = None
        if isinstance(source, str) and not source.startswith("s3://"):
            try:
                digest = LocalDigests().digest(local_path(source, step.base_dir)).digest
            except OSError:
                digest = None  # missing now: the step fails when it runs
        literal[f"inputs.{name}"] = digest
    manifest: dict[str, Any] = {
        "code_files": {name: digest[:SHORT_DIGEST] for name, digest in code_files.items()},
        "literal_inputs": literal,
    }
    if _json_length_bound(manifest) > MAX_SOURCES_CHARS and len(json.dumps(manifest)) > MAX_SOURCES_CHARS:
        manifest["code_files"] = None
        if len(json.dumps(manifest)) > MAX_SOURCES_CHARS:
            manifest["literal_inputs"] = None
    return manifest


def _json_length_bound(manifest: Mapping[str, Mapping[str, str | None]]) -> int:
    """At least ``len(json.dumps(manifest))`` for a sources manifest, without serializing it (done for
    every step of every parse): JSON escapes a character into at most 12 (a surrogate pair)."""
    return 64 + sum(
        12 * (len(name) + len(value or "null")) + 8
        for part in manifest.values()
        for name, value in part.items()
    )


def step_sources(step: Step) -> tuple[str, dict[str, str], dict[str, Any]]:
    """What a step's task is built with from files beyond the spec: the step's digest, its code
    inventory (see :func:`step_digest_and_code`) and its :func:`sources_manifest`."""
    digest, code_files = step_digest_and_code(step)
    return digest, code_files, sources_manifest(step, code_files)


def literal_sources(step: Step) -> dict[str, Any]:
    """The inputs of ``step`` that are not step outputs, by input name (processing inputs and training
    channels): paths or URLs, literal or given by expressions."""
    from airflow_provider_mlpipe.model.expressions import StepOutput
    from airflow_provider_mlpipe.model.steps import ProcessingStep, TrainingStep

    if isinstance(step, ProcessingStep):
        sources = {item.input_name: item.source for item in step.processing_inputs}
    elif isinstance(step, TrainingStep):
        sources = dict(step.channels)
    else:
        return {}
    return {name: source for name, source in sources.items() if not isinstance(source, StepOutput)}


def source_changes(recorded: Mapping[str, Any], sources: Mapping[str, Any] | None) -> list[str]:
    """What changed between a step's record and the sources the serialized DAG reports: code files
    (by their short digests) and literal local inputs. Empty when either side does not say."""
    if not isinstance(sources, Mapping):
        return []
    changes: list[str] = []
    files, recorded_files = sources.get("code_files"), recorded.get("code_files")
    if isinstance(files, Mapping) and isinstance(recorded_files, Mapping):
        before = {name: str(digest)[:SHORT_DIGEST] for name, digest in recorded_files.items()}
        changes += code_changes(before, {name: str(digest) for name, digest in files.items()})
    literal, inputs = sources.get("literal_inputs"), recorded.get("inputs")
    if isinstance(literal, Mapping) and isinstance(inputs, Mapping):
        for name, digest in sorted(literal.items()):
            item = inputs.get(name)
            if digest is not None and isinstance(item, Mapping) and item.get("digest") != digest:
                changes.append(f"{describe_input(name, item)} changed since that run")
    return changes
