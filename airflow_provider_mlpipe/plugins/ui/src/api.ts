// Calls to the plugin's endpoints, with the signed-in user's own credentials (the Airflow UI's
// session cookie), and every failure turned into a sentence the view can show.
import type {
  LineageGraph,
  NotAPipeline,
  PipelineGraph,
  RunLineage,
  SelectivePlanResponse,
  SelectiveRunRequest,
} from "./types";

/** A failed call, with a message for the user. */
export class ApiError extends Error {}

/**
 * The URL of an API path, resolved like the UI's own calls: against the UI's <base href>, so the
 * view works when Airflow is served under a sub-path.
 */
export const apiUrl = (path: string): string => new URL(`mlpipe/api/v1/${path}`, document.baseURI).href;

const pipelinePath = (dagId: string): string => `pipelines/${encodeURIComponent(dagId)}`;

/** FastAPI's `detail`: a sentence (HTTPException) or a list of validation errors (422). */
export const describeDetail = (payload: unknown): string | undefined => {
  if (typeof payload !== "object" || payload === null || !("detail" in payload)) {
    return undefined;
  }
  const { detail } = payload as { detail: unknown };
  if (typeof detail === "string") {
    return detail;
  }
  if (Array.isArray(detail)) {
    return detail
      .map((item: { loc?: Array<unknown>; msg?: string }) =>
        item.loc ? `${item.loc.join(".")}: ${item.msg ?? ""}` : String(item.msg ?? JSON.stringify(item)),
      )
      .join("; ");
  }
  return JSON.stringify(detail);
};

/** The message for an HTTP error answer. */
export const httpErrorMessage = (status: number, statusText: string, body: string): string => {
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    payload = undefined;
  }
  const detail = describeDetail(payload) ?? (body.trim().slice(0, 300) || statusText || "no details");
  if (status === 401) {
    return `Not signed in (HTTP 401): ${detail}. Sign in to Airflow again.`;
  }
  if (status === 403) {
    return `Not allowed (HTTP 403): ${detail}.`;
  }
  if (status >= 500) {
    return `The Airflow API server failed (HTTP ${status}): ${detail}`;
  }
  return `Refused (HTTP ${status}): ${detail}`;
};

const callApi = async <T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> => {
  let response: Response;
  try {
    response = await fetch(apiUrl(path), {
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      method,
    });
  } catch (error) {
    throw new ApiError(
      `Could not reach the Airflow API server: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const text = await response.text().catch(() => "");
  if (!response.ok) {
    throw new ApiError(httpErrorMessage(response.status, response.statusText, text));
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(`The Airflow API server sent an answer that is not JSON (HTTP ${response.status}).`);
  }
};

export const fetchRunGraph = (dagId: string, runId: string): Promise<NotAPipeline | PipelineGraph> =>
  callApi("GET", `${pipelinePath(dagId)}/runs/${encodeURIComponent(runId)}/graph`);

export const postSelectiveRun = (
  dagId: string,
  request: SelectiveRunRequest,
): Promise<SelectivePlanResponse> => callApi("POST", `${pipelinePath(dagId)}/selectiveRuns`, request);

export const fetchRunLineage = (dagId: string, runId: string): Promise<RunLineage> =>
  callApi("GET", `${pipelinePath(dagId)}/runs/${encodeURIComponent(runId)}/lineage`);

export const fetchModelLineage = (dagId: string, group: string, version: number): Promise<LineageGraph> =>
  callApi(
    "GET",
    `${pipelinePath(dagId)}/models/${encodeURIComponent(group)}/${encodeURIComponent(String(version))}/lineage`,
  );
