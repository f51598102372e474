// Loads what the view shows of a run (the graph endpoint), and reloads it every few seconds while
// the run is still going, so step states move on and the form opens once the run has finished.
import { useEffect, useState } from "react";

import { ApiError, fetchRunGraph } from "./api";
import type { PipelineGraph } from "./types";

export type GraphLoad =
  | { status: "loading" }
  | { status: "failed"; message: string }
  | { status: "not_pipeline"; reason: string }
  | { status: "ready"; graph: PipelineGraph };

const REFRESH_MS = 5000;

export const useRunGraph = (dagId: string, runId: string): GraphLoad => {
  const [load, setLoad] = useState<GraphLoad>({ status: "loading" });

  useEffect(() => {
    let current = true; // answers for a run the user has left are dropped
    let timer: ReturnType<typeof setTimeout> | undefined;
    setLoad({ status: "loading" });
    const fetchOnce = () => {
      fetchRunGraph(dagId, runId)
        .then((answer) => {
          if (!current) {
            return;
          }
          setLoad(
            answer.pipeline
              ? { graph: answer, status: "ready" }
              : { reason: answer.reason, status: "not_pipeline" },
          );
          if (answer.pipeline && !answer.run.finished) {
            timer = setTimeout(fetchOnce, REFRESH_MS);
          }
        })
        .catch((error: unknown) => {
          if (current) {
            setLoad({ message: error instanceof ApiError ? error.message : String(error), status: "failed" });
          }
        });
    };
    fetchOnce();
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [dagId, runId]);

  return load;
};
