// Loads what the view shows of a run (the graph endpoint) once per DAG run.
import { useEffect, useState } from "react";

import { ApiError, fetchRunGraph } from "./api";
import type { PipelineGraph } from "./types";

export type GraphLoad =
  | { status: "loading" }
  | { status: "failed"; message: string }
  | { status: "not_pipeline"; reason: string }
  | { status: "ready"; graph: PipelineGraph };

export const useRunGraph = (dagId: string, runId: string): GraphLoad => {
  const [load, setLoad] = useState<GraphLoad>({ status: "loading" });

  useEffect(() => {
    let current = true; // a late answer for a run the user has left is dropped
    setLoad({ status: "loading" });
    fetchRunGraph(dagId, runId)
      .then((answer) => {
        if (current) {
          setLoad(answer.pipeline ? { graph: answer, status: "ready" } : { reason: answer.reason, status: "not_pipeline" });
        }
      })
      .catch((error: unknown) => {
        if (current) {
          setLoad({ message: error instanceof ApiError ? error.message : String(error), status: "failed" });
        }
      });
    return () => {
      current = false;
    };
  }, [dagId, runId]);

  return load;
};
