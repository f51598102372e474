// The "Lineage" section of the view: what each step of the run read and wrote (digests of artifacts
// and data files), its code digest and the parameter values it read, where reused or cached outputs
// came from, and for a registered model the data, code and parameters that produced it.
import { Alert, Badge, Box, Button, Code, Heading, Spinner, Stack, Table, Text } from "@chakra-ui/react";
import { useEffect, useState } from "react";

import { ApiError, fetchModelLineage, fetchRunLineage } from "../api";
import { inputLine, modelRows, origin, outputLine, parameterLine, shortDigest } from "../lineage";
import type { LineageGraph, RunLineage, StepLineage } from "../types";
import { RunLink } from "./RunLink";

type Props = { readonly dagId: string; readonly runId: string; readonly finished: boolean };

const message = (error: unknown): string => (error instanceof ApiError ? error.message : String(error));

const ModelLineage = ({ dagId, step }: { readonly dagId: string; readonly step: StepLineage }) => {
  const [graph, setGraph] = useState<LineageGraph | undefined>();
  const [error, setError] = useState<string | undefined>();
  const model = step.model;
  if (!model) {
    return null;
  }
  const load = () => {
    setError(undefined);
    fetchModelLineage(dagId, model.group, model.version).then(setGraph, (failure: unknown) =>
      setError(message(failure)),
    );
  };
  return (
    <Box data-testid={`model-lineage-${model.group}-${model.version}`} mt={2}>
      {graph === undefined ? (
        <Button onClick={load} size="xs" variant="outline">
          What produced {model.group} v{model.version}?
        </Button>
      ) : (
        <Table.Root size="sm" variant="outline">
          <Table.Body>
            {modelRows(graph).map((row) => (
              <Table.Row key={row.id}>
                <Table.Cell fontFamily="mono">{row.step}</Table.Cell>
                <Table.Cell>
                  <RunLink dagId={dagId} runId={row.runId} truncate />
                </Table.Cell>
                <Table.Cell fontFamily="mono">{row.parameters}</Table.Cell>
                <Table.Cell fontFamily="mono">{row.data.join(", ")}</Table.Cell>
              </Table.Row>
            ))}
          </Table.Body>
        </Table.Root>
      )}
      {error ? <Text color="fg.error">{error}</Text> : null}
    </Box>
  );
};

const StepRow = ({
  dagId,
  runId,
  step,
}: {
  readonly dagId: string;
  readonly runId: string;
  readonly step: StepLineage;
}) => (
  <Table.Row data-testid={`lineage-${step.name}`}>
    <Table.Cell fontFamily="mono" verticalAlign="top">
      {step.name}
      <ModelLineage dagId={dagId} step={step} />
    </Table.Cell>
    <Table.Cell verticalAlign="top">
      {step.cache_hit ? (
        <Badge colorPalette="info" mr={1}>
          cache hit
        </Badge>
      ) : null}
      <Text as="span" fontSize="sm">
        {origin(step, runId)}
      </Text>
    </Table.Cell>
    <Table.Cell fontFamily="mono" fontSize="xs" verticalAlign="top">
      <Text title={Object.keys(step.code_files).join("\n")}>{shortDigest(step.code_digest)}</Text>
      <Text color="fg.muted">{parameterLine(step.parameters)}</Text>
    </Table.Cell>
    <Table.Cell fontFamily="mono" fontSize="xs" verticalAlign="top">
      <Stack gap={0}>
        {step.inputs.map((input) => (
          <Text key={input.name}>{inputLine(input)}</Text>
        ))}
      </Stack>
    </Table.Cell>
    <Table.Cell fontFamily="mono" fontSize="xs" verticalAlign="top">
      <Stack gap={0}>
        {step.outputs.map((output) => (
          <Text key={output.name}>{outputLine(output)}</Text>
        ))}
      </Stack>
    </Table.Cell>
  </Table.Row>
);

export const LineageSection = ({ dagId, finished, runId }: Props) => {
  const [lineage, setLineage] = useState<RunLineage | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    let current = true;
    setLineage(undefined);
    fetchRunLineage(dagId, runId).then(
      (answer) => current && setLineage(answer),
      (failure: unknown) => current && setError(message(failure)),
    );
    return () => {
      current = false;
    };
  }, [dagId, runId, finished]);

  return (
    <Box data-testid="lineage-section">
      <Heading as="h3" mb={2} size="md">
        Lineage
      </Heading>
      <Text color="fg.muted" fontSize="sm" mb={2}>
        What each step read and wrote (content digests), its code digest and the parameters it read. The same
        as <Code>mlpipe lineage</Code>.
      </Text>
      {error ? (
        <Alert.Root status="error">
          <Alert.Indicator />
          <Alert.Description>{error}</Alert.Description>
        </Alert.Root>
      ) : lineage === undefined ? (
        <Spinner aria-label="Loading the lineage" />
      ) : (
        <Table.Root size="sm" variant="outline">
          <Table.Header>
            <Table.Row>
              <Table.ColumnHeader>Step</Table.ColumnHeader>
              <Table.ColumnHeader>Outputs from</Table.ColumnHeader>
              <Table.ColumnHeader>Code · parameters</Table.ColumnHeader>
              <Table.ColumnHeader>Read</Table.ColumnHeader>
              <Table.ColumnHeader>Wrote</Table.ColumnHeader>
            </Table.Row>
          </Table.Header>
          <Table.Body>
            {lineage.steps.map((step) => (
              <StepRow dagId={dagId} key={step.name} runId={runId} step={step} />
            ))}
          </Table.Body>
        </Table.Root>
      )}
    </Box>
  );
};
