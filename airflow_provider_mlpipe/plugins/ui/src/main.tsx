// The "Selective run" tab of a DAG run in the Airflow UI (a plugin React app).
//
// The UI renders the default export with the route's dagId and runId, inside its own React tree:
// Chakra's provider and theme (so semantic tokens follow the light/dark mode the user picked), the
// router (so links stay in the single-page app) and the signed-in session (the API cookie).
import { Alert, Box, Code, Heading, Spinner, Stack, Text } from "@chakra-ui/react";

import { LineageSection } from "./components/LineageSection";
import { RunLink } from "./components/RunLink";
import { SelectiveRunForm } from "./SelectiveRunForm";
import { useRunGraph } from "./useRunGraph";

export type SelectiveRunViewProps = {
  readonly dagId?: string;
  readonly runId?: string;
  readonly taskId?: string;
  readonly mapIndex?: string;
};

const Message = ({
  status,
  title,
  text,
}: {
  readonly status: "error" | "info";
  readonly title: string;
  readonly text: string;
}) => (
  <Alert.Root data-testid={status === "error" ? "load-error" : "not-pipeline"} status={status}>
    <Alert.Indicator />
    <Alert.Content>
      <Alert.Title>{title}</Alert.Title>
      <Alert.Description>{text}</Alert.Description>
    </Alert.Content>
  </Alert.Root>
);

const Body = ({ dagId, runId }: { readonly dagId: string; readonly runId: string }) => {
  const load = useRunGraph(dagId, runId);
  switch (load.status) {
    case "loading":
      return <Spinner aria-label="Loading the pipeline" />;
    case "failed":
      return <Message status="error" text={load.message} title="Could not load the pipeline" />;
    case "not_pipeline":
      return (
        <Message
          status="info"
          text={`${load.reason}. Selective runs are for pipelines built by airflow-provider-mlpipe (DAGs tagged "mlpipe").`}
          title="Not an mlpipe pipeline"
        />
      );
    default:
      return (
        <>
          <Text color="fg.muted" fontSize="sm">
            Run chosen steps of <Code>{dagId}</Code> again. Every unselected step upstream of them is taken
            from run <RunLink dagId={dagId} runId={runId} />: recorded as done with its outputs, without
            starting.
          </Text>
          <SelectiveRunForm dagId={dagId} graph={load.graph} key={`${dagId} ${runId}`} />
          <LineageSection dagId={dagId} finished={load.graph.run.finished} runId={runId} />
        </>
      );
  }
};

const SelectiveRunView = ({ dagId, runId }: SelectiveRunViewProps) => (
  <Box data-testid="mlpipe-selective-run" height="100%" overflowY="auto" p={4}>
    <Stack gap={4} maxWidth="1400px">
      <Heading as="h2" size="lg">
        Selective run
      </Heading>
      {dagId && runId ? (
        <Body dagId={dagId} runId={runId} />
      ) : (
        <Message status="error" text="Open this tab from a DAG run." title="No DAG run" />
      )}
    </Stack>
  </Box>
);

export default SelectiveRunView;
