"""A lineage graph as a table (text), JSON, an SVG picture, or an HTML page with both.

The picture lays the graph out left to right in layers (each node one layer after the nodes that lead
to it): data and artifacts are rounded boxes, step executions square ones (dashed when their outputs
came from the cache), model versions bold. Everything is drawn here, with no library and no script.
"""

from __future__ import annotations

import graphlib
import json
from html import escape
from typing import Any

from airflow_provider_mlpipe.lineage.graph import LineageGraph

NODE_WIDTH = 220
NODE_HEIGHT = 54
LAYER_GAP = 90
ROW_GAP = 26
_FILL = {"artifact": "#eef6ee", "step": "#e8f1fb", "model": "#fdf1dc"}
_STROKE = {"artifact": "#4a8a4a", "step": "#3a6ea5", "model": "#b7791f"}


def _short(digest: Any) -> str:
    return str(digest or "").removeprefix("sha256:")[:12]


def table_rows(graph: LineageGraph) -> list[tuple[str, ...]]:
    """One row per step execution: where it ran, its code, parameters, inputs and outputs."""
    rows: list[tuple[str, ...]] = []
    inputs: dict[str, list[str]] = {}
    outputs: dict[str, list[str]] = {}
    for edge in graph.edges:
        source, target = graph.nodes.get(edge["from"], {}), graph.nodes.get(edge["to"], {})
        if target.get("type") == "step" and source.get("type") == "artifact":
            inputs.setdefault(edge["to"], []).append(f"{edge['label']}={_short(source.get('digest'))}")
        if source.get("type") == "step" and target.get("type") in ("artifact", "model"):
            shown = _short(target.get("digest")) if target.get("type") == "artifact" else target.get("label")
            outputs.setdefault(edge["from"], []).append(f"{edge['label']}={shown}")
    for node in graph.steps():
        origin = f"cache hit from {node['source_run_id']}" if node.get("cache_hit") else ""
        rows.append(
            (
                str(node.get("pipeline")),
                str(node.get("run_id")),
                str(node.get("step")),
                _short(node.get("code_digest")),
                json.dumps(node.get("parameters") or {}, sort_keys=True),
                ", ".join(inputs.get(node["id"], [])),
                ", ".join(outputs.get(node["id"], [])),
                origin,
            )
        )
    return rows


TABLE_HEADERS = ("pipeline", "run", "step", "code", "parameters", "inputs", "outputs", "cache")


def to_table(graph: LineageGraph) -> str:
    """The graph as text: the step executions, then the data sets and models it holds."""
    from airflow_provider_mlpipe.cli.output import format_table

    parts = [f"{graph.direction} lineage of {graph.root}", "", format_table(TABLE_HEADERS, table_rows(graph))]
    data = graph.data()
    if data:
        data_rows: list[tuple[Any, ...]] = [
            (item.get("location"), item.get("artifact_type"), item.get("size"), item["digest"])
            for item in data
        ]
        parts += ["", format_table(("data", "type", "bytes", "digest"), data_rows)]
    models = graph.models()
    if models:
        model_rows: list[tuple[Any, ...]] = [
            (item.get("group"), item.get("version"), item.get("approval_status") or "") for item in models
        ]
        parts += ["", format_table(("model group", "version", "status"), model_rows)]
    return "\n".join(parts)


def to_json(graph: LineageGraph) -> str:
    return json.dumps(graph.to_dict(), indent=2, sort_keys=True, default=str)


def _layers(graph: LineageGraph) -> dict[str, int]:
    """Each node's column: one more than the furthest node leading to it."""
    predecessors: dict[str, set[str]] = {node: set() for node in graph.nodes}
    for edge in graph.edges:
        if edge["from"] in graph.nodes and edge["to"] in graph.nodes:
            predecessors[edge["to"]].add(edge["from"])
    layer: dict[str, int] = {}
    try:
        order = list(graphlib.TopologicalSorter(predecessors).static_order())
    except graphlib.CycleError:  # the same content read and written: draw it all in order found
        order = list(graph.nodes)
    for node in order:
        layer[node] = max(
            (layer.get(parent, 0) + 1 for parent in predecessors[node] if parent in layer), default=0
        )
    return layer


def _node_lines(node: dict[str, Any]) -> tuple[str, str]:
    if node["type"] == "step":
        cache = "cache hit · " if node.get("cache_hit") else ""
        return str(node.get("label")), f"{cache}{node.get('pipeline')} · {str(node.get('run_id'))[:26]}"
    if node["type"] == "model":
        return str(node.get("label")), str(node.get("approval_status") or "model version")
    first = str(node.get("label"))
    return (
        first if len(first) <= 30 else "…" + first[-29:]
    ), f"{node.get('artifact_type') or 'artifact'} · {_short(node.get('digest'))}"


def to_svg(graph: LineageGraph) -> str:
    """The graph as an SVG picture (a standalone document)."""
    layers = _layers(graph)
    columns: dict[int, list[str]] = {}
    for node_id in graph.nodes:
        columns.setdefault(layers.get(node_id, 0), []).append(node_id)
    position = {}
    for column, names in columns.items():
        for row, name in enumerate(names):
            position[name] = (20 + column * (NODE_WIDTH + LAYER_GAP), 20 + row * (NODE_HEIGHT + ROW_GAP))
    width = 40 + (max(columns, default=0) + 1) * (NODE_WIDTH + LAYER_GAP)
    height = 40 + max((len(names) for names in columns.values()), default=1) * (NODE_HEIGHT + ROW_GAP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(graph.direction)} lineage of {escape(graph.root)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>',
    ]
    for edge in graph.edges:
        if edge["from"] not in position or edge["to"] not in position:
            continue
        (x1, y1), (x2, y2) = position[edge["from"]], position[edge["to"]]
        start = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2)
        end = (x2, y2 + NODE_HEIGHT / 2)
        parts.append(
            f'<g class="edge"><line x1="{start[0]}" y1="{start[1]}" x2="{end[0]}" y2="{end[1]}" '
            'stroke="#666" marker-end="url(#arrow)"/>'
            f'<text x="{(start[0] + end[0]) / 2}" y="{(start[1] + end[1]) / 2 - 4}" text-anchor="middle" '
            f'fill="#444" font-size="10">{escape(edge["label"])}</text></g>'
        )
    for name, item in graph.nodes.items():
        x, y = position[name]
        kind = item["type"]
        rounded = 12 if kind == "artifact" else 3
        dashed = ' stroke-dasharray="5 3"' if item.get("cache_hit") else ""
        weight = 3 if kind == "model" or name == graph.root else 1.5
        first, second = _node_lines(item)
        parts.append(
            f'<g class="node {kind}" data-id="{escape(name)}"><rect x="{x}" y="{y}" width="{NODE_WIDTH}" '
            f'height="{NODE_HEIGHT}" rx="{rounded}" fill="{_FILL[kind]}" stroke="{_STROKE[kind]}" '
            f'stroke-width="{weight}"{dashed}/>'
            f'<text x="{x + 10}" y="{y + 22}" font-weight="bold">{escape(first)}</text>'
            f'<text x="{x + 10}" y="{y + 40}" fill="#555" font-size="10">{escape(second)}</text></g>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def to_html(graph: LineageGraph) -> str:
    """A page with the picture, the table of step executions and the graph as JSON."""
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table_rows(graph)
    )
    headers = "".join(f"<th>{escape(name)}</th>" for name in TABLE_HEADERS)
    title = f"{graph.direction} lineage of {graph.root}"
    data = to_json(graph).replace("</", "<\\/")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>body{{font-family:sans-serif;margin:20px}}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:4px 6px;"
        "text-align:left;vertical-align:top}.graph{overflow:auto;border:1px solid #ddd;margin:12px 0}</style>"
        f"</head><body><h1>{escape(title)}</h1><div class='graph'>{to_svg(graph)}</div>"
        f"<h2>Step executions</h2><table><thead><tr>{headers}</tr></thead><tbody>{rows}</tbody></table>"
        f"<script type='application/json' id='lineage'>{data}</script></body></html>\n"
    )


RENDERERS = {"table": to_table, "json": to_json, "svg": to_svg, "html": to_html}
