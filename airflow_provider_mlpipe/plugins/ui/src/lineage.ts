// How the Lineage section words a step's inputs, outputs and origin (pure functions, unit tested).
import type { LineageGraph, LineageInput, LineageOutput, StepLineage } from "./types";

/** The first 12 hex digits of a digest, as the CLI shows them. */
export const shortDigest = (digest: string | null | undefined): string =>
  digest ? digest.replace(/^sha256:/u, "").slice(0, 12) : "-";

/** `data/raw.csv` for a literal input, `Prep.clean` for an upstream artifact. */
export const inputSource = (input: LineageInput): string =>
  input.kind === "literal"
    ? (input.location ?? input.name)
    : `${input.step ?? "?"}.${input.output ?? input.name}`;

export const inputLine = (input: LineageInput): string =>
  `${inputSource(input)} = ${shortDigest(input.digest)}`;

export const outputLine = (output: LineageOutput): string =>
  `${output.name} (${output.type ?? "?"}) = ${shortDigest(output.digest)}`;

/** Where a step's outputs come from: computed in this run, a cache hit, or reused by a selective run. */
export const origin = (step: StepLineage, runId: string): string => {
  if (step.cache_hit) {
    return `cache hit: outputs of run ${step.source_run_id ?? "?"}`;
  }
  if (step.source_run_id && step.source_run_id !== runId) {
    const computed = step.origin_run_id && step.origin_run_id !== step.source_run_id;
    return `reused from run ${step.source_run_id}${computed ? ` (computed in run ${step.origin_run_id})` : ""}`;
  }
  return step.fingerprint ? "computed in this run" : "did not run";
};

export const parameterLine = (parameters: Record<string, unknown>): string =>
  Object.entries(parameters)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join(", ");

/** The step executions of a model's lineage graph, each with the data sets it read. */
export const modelRows = (
  graph: LineageGraph,
): Array<{ id: string; step: string; runId: string; parameters: string; data: Array<string> }> => {
  const nodes = new Map(graph.nodes.map((node) => [node.id, node]));
  return graph.nodes
    .filter((node) => node.type === "step")
    .map((node) => ({
      data: graph.edges
        .filter((edge) => edge.to === node.id && nodes.get(edge.from)?.literal)
        .map((edge) => `${nodes.get(edge.from)?.location ?? edge.from} = ${shortDigest(edge.from)}`),
      id: node.id,
      parameters: parameterLine(node.parameters ?? {}),
      runId: node.run_id ?? "",
      step: node.step ?? node.label,
    }));
};
