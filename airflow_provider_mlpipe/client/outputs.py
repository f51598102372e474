"""A step's outputs read back from the artifact store: ``execution.step_outputs("Train")``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class StepOutputs(Mapping[str, Any]):
    """The outputs of one step, by name; each is loaded from the artifact store when first read.

    :param step_name: the step, for messages.
    :param refs: the output references of the step's record (URI, digest, type, size).
    :param store_url: the artifact store to read from (default: ``[mlpipe] artifact_store``).
    :param allow_pickle: whether outputs stored as pickles may be loaded.
    :param download_dir: where copies of files and folders go (default: a new temporary folder each).
    """

    def __init__(
        self,
        step_name: str,
        refs: Mapping[str, Any],
        *,
        store_url: str | None = None,
        allow_pickle: bool = False,
        download_dir: Path | None = None,
    ) -> None:
        self.step_name = step_name
        self._refs = dict(refs)
        self._store_url = store_url
        self._allow_pickle = allow_pickle
        self._download_dir = download_dir
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._refs:
                raise KeyError(
                    f"step {self.step_name!r} has no output {name!r} (it has: {', '.join(self._refs) or 'none'})"
                )
            self._values[name] = self._load(self._refs[name])
        return self._values[name]

    def _load(self, ref: Any) -> Any:
        from airflow_provider_mlpipe.artifacts.reference import ArtifactRef
        from airflow_provider_mlpipe.artifacts.serializers import load_value
        from airflow_provider_mlpipe.settings import artifact_store_at

        return load_value(
            artifact_store_at(self._store_url),
            ArtifactRef.from_dict(ref),
            allow_pickle=self._allow_pickle,
            workdir=self._download_dir,
        )

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"StepOutputs({self.step_name!r}, {list(self._refs)!r})"
