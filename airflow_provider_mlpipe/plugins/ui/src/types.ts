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
