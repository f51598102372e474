// The answers of the plugin's endpoints (airflow_provider_mlpipe/plugins/api.py), as the view uses them.

/** What became of a step in the run the view is opened on (see plugins/run_graph.py). */
export type StepFate = "ran" | "reused" | "reused_skipped" | "not_run" | "pending";

export type GraphStep = {
  name: string;
  kind: string;
  upstream: Array<string>;
  if_steps: Array<string>;
  else_steps: Array<string>;
  state: string | null;
  try_number: number | null;
  note: string | null;
  fate: StepFate;
  source_run_id: string | null;
  origin_run_id: string | null;
  failure_reason: string | null;
  outcome: boolean | null;
};

export type GraphEdge = { from: string; to: string; label: string | null };

export type JsonSchema = {
  type?: string | Array<string>;
  enum?: Array<unknown>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  title?: string;
  description?: string;
};

export type ParamSpec = {
  schema: JsonSchema;
  description: string | null;
  default: unknown;
  has_run_value: boolean;
  run_value: unknown;
};

export type RunSummary = {
  run_id: string;
  state: string | null;
  note: string | null;
  finished: boolean;
  selective: { selected_steps?: Array<string>; source_run_id?: string; reused_steps?: Array<string> } | null;
};

export type PipelineGraph = {
  dag_id: string;
  pipeline: true;
  run: RunSummary;
  steps: Array<GraphStep>;
  edges: Array<GraphEdge>;
  params: Record<string, ParamSpec>;
};

export type NotAPipeline = { dag_id: string; pipeline: false; reason: string };

export type SelectiveRunRequest = {
  selected_steps: Array<string>;
  source_run_id: string;
  include_between: boolean;
  parameters: Record<string, unknown>;
  dry_run: boolean;
};

export type SelectivePlanResponse = {
  dag_id: string;
  source_run_id: string;
  selected_steps: Array<string>;
  reused_steps: Array<string>;
  reused_skipped_steps: Array<string>;
  not_run: Record<string, string>;
  parameters: Record<string, unknown>;
  run_id?: string;
  state?: string;
  note?: string;
};

/** One input of a step in a run's lineage: an upstream artifact or a literal input (a data file). */
export type LineageInput = {
  name: string;
  kind: "artifact" | "literal" | null;
  digest: string | null;
  type: string | null;
  size: number | null;
  location: string | null;
  step: string | null;
  output: string | null;
};

export type LineageOutput = { name: string; digest: string | null; type: string | null; size: number | null };

/** What one step of a run read and wrote (see plugins/run_lineage.py). */
export type StepLineage = {
  name: string;
  kind: string;
  state: string | null;
  fingerprint: string | null;
  code_digest: string | null;
  code_files: Record<string, string>;
  parameters: Record<string, unknown>;
  cache_hit: boolean;
  source_run_id: string | null;
  origin_run_id: string | null;
  inputs: Array<LineageInput>;
  outputs: Array<LineageOutput>;
  model: { group: string; version: number } | null;
};

export type RunLineage = { dag_id: string; run_id: string; steps: Array<StepLineage> };

/** A node of a lineage graph (see lineage/graph.py): an artifact, a step execution or a model version. */
export type LineageNode = {
  id: string;
  type: "artifact" | "step" | "model";
  label: string;
  step?: string;
  run_id?: string;
  pipeline?: string;
  parameters?: Record<string, unknown>;
  code_digest?: string | null;
  cache_hit?: boolean;
  source_run_id?: string | null;
  digest?: string;
  literal?: boolean;
  location?: string | null;
};

export type LineageGraph = {
  root: string;
  direction: "upstream" | "downstream";
  nodes: Array<LineageNode>;
  edges: Array<{ from: string; to: string; label: string }>;
};
