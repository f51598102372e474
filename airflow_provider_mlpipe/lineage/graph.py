"""Lineage queries: which data, code and parameters produced an artifact or a model version (upstream),
and which steps and models used an artifact or a data set (downstream).

A query walks the edges of the lineage index (:mod:`.index`) from one artifact, one hop per listing;
the answer is a :class:`LineageGraph` of artifacts, step executions and model versions, which
:mod:`.render` shows as a table, JSON or a picture.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mlpipe.artifacts.store import ArtifactStore
from airflow_provider_mlpipe.exceptions import LineageNotFoundError, RegistryError
from airflow_provider_mlpipe.fingerprint import LITERAL_INPUT
from airflow_provider_mlpipe.lineage.index import PRODUCED, USED, LineageIndex, execution_key

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
# How many step executions one query follows at most (a guard, not a limit anyone should meet).
MAX_EXECUTIONS = 5000
_DIGEST = re.compile(r"(?:sha256:)?([0-9a-f]{64})")
_MODEL = re.compile(r"(.+):(\d+)")


@dataclass
class LineageGraph:
    """Nodes (artifacts, step executions, model versions) and edges (``from`` -> ``to``) of a query.

    :param root: the node the query started from.
    :param direction: ``upstream`` or ``downstream``.
    """

    root: str
    direction: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)

    def add_node(self, node_id: str, **attributes: Any) -> None:
        self.nodes.setdefault(node_id, {"id": node_id, **attributes})

    def add_edge(self, source: str, target: str, label: str) -> None:
        edge = {"from": source, "to": target, "label": label}
        if edge not in self.edges:
            self.edges.append(edge)

    def steps(self) -> list[dict[str, Any]]:
        """The step executions, in the order the query found them."""
        return [node for node in self.nodes.values() if node["type"] == "step"]

    def models(self) -> list[dict[str, Any]]:
        """The model versions in the graph."""
        return [node for node in self.nodes.values() if node["type"] == "model"]

    def data(self) -> list[dict[str, Any]]:
        """The literal inputs (data files or folders named in a spec) in the graph."""
        return [node for node in self.nodes.values() if node["type"] == "artifact" and node.get("literal")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": list(self.nodes.values()),
            "edges": list(self.edges),
        }


def artifact_node_id(digest: str) -> str:
    return digest


def step_node_id(document: Mapping[str, Any]) -> str:
    return f"step:{document['pipeline']}/{document['run_id']}/{document['step']}"


def model_node_id(group: str, version: int) -> str:
    return f"model:{group}:{version}"


def _step_attributes(document: Mapping[str, Any]) -> dict[str, Any]:
    found = document.get("cache")
    cache: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "type": "step",
        "label": f"{document.get('step')} ({document.get('kind')})",
        "pipeline": document.get("pipeline"),
        "run_id": document.get("run_id"),
        "step": document.get("step"),
        "kind": document.get("kind"),
        "fingerprint": document.get("fingerprint"),
        "code_digest": document.get("code_digest"),
        "code_files": document.get("code_files") or {},
        "parameters": document.get("parameters") or {},
        "cache_hit": bool(cache.get("hit")),
        "source_run_id": document.get("source_run_id") if cache.get("hit") else None,
        "metadata": document.get("metadata") or {},
    }


class LineageQuery:
    """Lineage queries over the index in one artifact store.

    :param store: the artifact store the pipelines write to.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.index = LineageIndex(store)

    def query(self, identifier: str, direction: str = UPSTREAM) -> LineageGraph:
        """The lineage of ``GROUP:VERSION`` (a model version) or an artifact digest (``sha256:<hex>``
        or the 64 hex digits, e.g. a data file's ``sha256sum``).

        :raises LineageNotFoundError: no such model version, or no step wrote or read that artifact.
        """
        if direction not in (UPSTREAM, DOWNSTREAM):
            raise ValueError(f"direction must be {UPSTREAM!r} or {DOWNSTREAM!r}, got {direction!r}")
        identifier = identifier.strip()
        digest = _DIGEST.fullmatch(identifier)
        if digest is not None:
            return self.artifact(f"sha256:{digest.group(1)}", direction)
        model = _MODEL.fullmatch(identifier)
        if model is not None:
            return self.model(model.group(1), int(model.group(2)), direction)
        raise LineageNotFoundError(
            f"{identifier!r} is neither a model version (GROUP:VERSION) nor an artifact digest (sha256:<64 hex>)"
        )

    def artifact(self, digest: str, direction: str = UPSTREAM) -> LineageGraph:
        """The lineage of one artifact (or literal input) by its digest."""
        if not self.index.known(digest):
            raise LineageNotFoundError(
                f"no step wrote or read an artifact with digest {digest} (in the lineage index of {self.store.url})"
            )
        graph = LineageGraph(root=digest, direction=direction)
        graph.add_node(digest, type="artifact", label=digest.removeprefix("sha256:")[:12], digest=digest)
        self._walk(graph, [digest], direction)
        return graph

    def model(self, group: str, version: int, direction: str = UPSTREAM) -> LineageGraph:
        """The lineage of a registered model version: upstream, the data, code and parameters that
        produced its model; downstream, what used its model artifact."""
        from airflow_provider_mlpipe.artifacts.registry import ModelRegistry

        try:
            found = ModelRegistry(self.store).get(group, version)
        except RegistryError as error:
            raise LineageNotFoundError(str(error)) from None
        model_digest = str(found.model.get("digest"))
        root = model_node_id(group, version)
        graph = LineageGraph(root=root, direction=direction)
        graph.add_node(
            root,
            type="model",
            label=f"{group} v{version}",
            group=group,
            version=version,
            approval_status=found.approval_status,
            metrics=found.metrics,
        )
        graph.add_node(
            model_digest,
            type="artifact",
            label=model_digest.removeprefix("sha256:")[:12],
            digest=model_digest,
        )
        metadata = found.metadata or {}
        register = (
            self.index.execution(
                execution_key(
                    str(metadata.get("pipeline")),
                    str(metadata.get("execution_id")),
                    str(metadata.get("step")),
                )
            )
            if metadata.get("pipeline") and metadata.get("execution_id") and metadata.get("step")
            else None
        )
        if register is not None:
            node = step_node_id(register)
            graph.add_node(node, **_step_attributes(register))
            graph.add_edge(model_digest, node, "model_data")
            graph.add_edge(node, root, "registered")
        else:
            graph.add_edge(model_digest, root, "registered")
        if direction == UPSTREAM:
            self._walk(graph, [model_digest], UPSTREAM)
        else:
            self._walk(graph, [model_digest], DOWNSTREAM)
        return graph

    def _walk(self, graph: LineageGraph, start: list[str], direction: str) -> None:
        queue = deque(start)
        seen_artifacts = set(start)
        followed = 0
        while queue and followed < MAX_EXECUTIONS:
            digest = queue.popleft()
            role = PRODUCED if direction == UPSTREAM else USED
            documents = self.index.executions(digest, role)
            if direction == UPSTREAM:
                # An execution that took the artifact from the cache did not compute it: the one that
                # did says what produced it (a cache hit is shown only when nothing else is known).
                computed = [item for item in documents if not (item.get("cache") or {}).get("hit")]
                documents = computed or documents
            for document in documents:
                followed += 1
                node = step_node_id(document)
                new = node not in graph.nodes
                graph.add_node(node, **_step_attributes(document))
                if direction == UPSTREAM:
                    name = _output_name(document, digest)
                    graph.add_edge(node, digest, name)
                    if new:
                        for next_digest in self._inputs(graph, document, node):
                            if next_digest not in seen_artifacts:
                                seen_artifacts.add(next_digest)
                                queue.append(next_digest)
                else:
                    graph.add_edge(digest, node, _input_name(document, digest))
                    if new:
                        for next_digest in self._outputs(graph, document, node):
                            if next_digest not in seen_artifacts:
                                seen_artifacts.add(next_digest)
                                queue.append(next_digest)

    @staticmethod
    def _inputs(graph: LineageGraph, document: Mapping[str, Any], node: str) -> list[str]:
        """Add the inputs of a step execution to ``graph``; return the upstream artifacts to follow."""
        follow = []
        for name, item in (document.get("inputs") or {}).items():
            digest = item.get("digest")
            if not digest:
                continue
            literal = item.get("kind") == LITERAL_INPUT
            graph.add_node(
                digest,
                type="artifact",
                label=str(item.get("location")) if literal else f"{item.get('step')}.{item.get('output')}",
                digest=digest,
                artifact_type=item.get("type"),
                literal=literal,
                location=item.get("location"),
                size=item.get("size"),
            )
            graph.add_edge(digest, node, name)
            if not literal:
                follow.append(digest)
        return follow

    @staticmethod
    def _outputs(graph: LineageGraph, document: Mapping[str, Any], node: str) -> list[str]:
        """Add the outputs (and a registered model version) of a step execution; return what to follow."""
        follow = []
        for name, ref in (document.get("outputs") or {}).items():
            digest = ref.get("digest")
            if not digest:
                continue
            graph.add_node(
                digest,
                type="artifact",
                label=f"{document.get('step')}.{name}",
                digest=digest,
                artifact_type=ref.get("type"),
                uri=ref.get("uri"),
                size=ref.get("size"),
            )
            graph.add_edge(node, digest, name)
            follow.append(digest)
        metadata = document.get("metadata") or {}
        if document.get("kind") == "register_model" and metadata.get("group") and metadata.get("version"):
            model = model_node_id(str(metadata["group"]), int(metadata["version"]))
            graph.add_node(
                model,
                type="model",
                label=f"{metadata['group']} v{metadata['version']}",
                group=metadata["group"],
                version=metadata["version"],
            )
            graph.add_edge(node, model, "registered")
        return follow


def _output_name(document: Mapping[str, Any], digest: str) -> str:
    names = [name for name, ref in (document.get("outputs") or {}).items() if ref.get("digest") == digest]
    return ", ".join(names) or "output"


def _input_name(document: Mapping[str, Any], digest: str) -> str:
    names = [name for name, item in (document.get("inputs") or {}).items() if item.get("digest") == digest]
    return ", ".join(names) or "input"
