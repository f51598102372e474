"""Write N pipeline specs of M steps each into a folder, for the benchmarks (and the perf tests)."""

from __future__ import annotations

from pathlib import Path

SCRIPT = "import os\nprint('noop', os.getcwd())\n"


def write_specs(folder: Path, pipelines: int = 100, steps: int = 20) -> list[Path]:
    """Each spec: a chain of processing and function steps, a condition with two branches that rejoin.

    :param folder: where to write ``bench_<i>.pipeline.yaml`` and the shared script.
    :param pipelines: how many specs.
    :param steps: steps per spec (at least 6).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "noop.py").write_text(SCRIPT)
    paths = []
    for index in range(pipelines):
        lines = [
            f"name: bench_{index:03d}",
            "parameters:",
            "  - {name: Depth, type: Integer, default: 3}",
            "  - {name: Threshold, type: Float, default: 0.5}",
            "steps:",
            "  - {name: s00, type: processing, code: noop.py, outputs: [data], arguments: [--depth, {param: Depth}]}",
        ]
        chain = steps - 4
        for position in range(1, chain):
            previous = f"s{position - 1:02d}"
            output = "data" if position == 1 else "result"
            lines.append(
                f"  - {{name: s{position:02d}, type: function, function: 'bench_fns:identity', "
                f"arguments: {{value: {{step: {previous}, output: {output}}}, factor: {{mul: [{{param: Depth}}, 2]}}}}}}"
            )
        last = f"s{chain - 1:02d}"
        lines += [
            f"  - name: check\n    type: condition\n    depends_on: [{last}]\n"
            "    conditions: [{gt: [{param: Threshold}, 0.1]}]\n    if_steps: [yes]\n    else_steps: [no]",
            "  - {name: yes, type: function, function: 'bench_fns:identity', arguments: {value: 1}}",
            "  - {name: no, type: function, function: 'bench_fns:identity', arguments: {value: 0}}",
            "  - {name: rejoin, type: function, function: 'bench_fns:identity', depends_on: [yes, no]}",
        ]
        path = folder / f"bench_{index:03d}.pipeline.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths
