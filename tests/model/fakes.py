"""A real, minimal :class:`EvaluationContext` for the model tests: plain dicts, and a log of what was read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FakeContext:
    """Gives parameter values, step outputs, property files and execution variables from dicts.

    Every read is appended to :attr:`reads` as ``(kind, name)``, so a test can prove what was (not)
    evaluated. A missing key raises ``KeyError``, as a test bug should.
    """

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        outputs: Mapping[tuple[str, str], Any] | None = None,
        property_files: Mapping[tuple[str, str], Any] | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.parameters = dict(parameters or {})
        self.outputs = dict(outputs or {})
        self.property_files = dict(property_files or {})
        self.variables = dict(variables or {})
        self.reads: list[tuple[str, str]] = []

    def parameter(self, name: str) -> Any:
        self.reads.append(("parameter", name))
        return self.parameters[name]

    def step_output(self, step_name: str, output_name: str) -> Any:
        self.reads.append(("output", f"{step_name}.{output_name}"))
        return self.outputs[(step_name, output_name)]

    def property_file(self, step_name: str, property_file: str) -> Any:
        self.reads.append(("property_file", f"{step_name}.{property_file}"))
        return self.property_files[(step_name, property_file)]

    def execution_variable(self, name: str) -> Any:
        self.reads.append(("execution", name))
        return self.variables[name]
