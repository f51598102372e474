// A link to a DAG run's page in the Airflow UI, through the UI's own router (no page reload).
import { Link } from "@chakra-ui/react";
import type { MouseEvent } from "react";
import { Link as RouterLink } from "react-router-dom";

export const runPath = (dagId: string, runId: string): string =>
  `/dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`;

type Props = {
  readonly dagId: string;
  readonly runId: string;
  readonly label?: string;
  readonly testId?: string;
  // One line cut with an ellipsis (the link's own box stays inside its container, so it is clickable).
  readonly truncate?: boolean;
};

// Clicks on the link must not also toggle the step card it sits on.
const keepToLink = (event: MouseEvent) => event.stopPropagation();

export const RunLink = ({ dagId, label, runId, testId, truncate = false }: Props) => (
  <Link
    asChild
    color="fg.info"
    display={truncate ? "block" : undefined}
    fontFamily="mono"
    minWidth={0}
    onClick={keepToLink}
    pointerEvents="auto"
    truncate={truncate}
    wordBreak={truncate ? undefined : "break-all"}
  >
    <RouterLink data-testid={testId} title={runId} to={runPath(dagId, runId)}>
      {label ?? runId}
    </RouterLink>
  </Link>
);
