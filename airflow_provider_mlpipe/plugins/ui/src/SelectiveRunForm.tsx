// Select steps on the graph, set parameters, preview (dry run) and start a selective run that takes
// every unselected upstream step from the run the view is opened on.
import { Alert, Box, Button, Checkbox, Heading, HStack, Stack, Text } from "@chakra-ui/react";
import { useCallback, useMemo, useRef, useState } from "react";

import { ApiError, postSelectiveRun } from "./api";
import { GraphLegend, PipelineGraph } from "./components/PipelineGraph";
import { type FieldState, ParameterFields } from "./components/ParameterFields";
import { PlanPreview } from "./components/PlanPreview";
import { RunLink } from "./components/RunLink";
import { type FieldInput, fieldKind, initialValue, inputFor, parseInput, sameValue } from "./params";
import type { PipelineGraph as Graph, SelectivePlanResponse } from "./types";

type Props = { readonly dagId: string; readonly graph: Graph };

type Outcome = { kind: "error"; message: string } | { kind: "started"; runId: string } | undefined;

export const SelectiveRunForm = ({ dagId, graph }: Props) => {
  const runId = graph.run.run_id;
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [includeBetween, setIncludeBetween] = useState(false);
  const [inputs, setInputs] = useState<Record<string, FieldInput>>(() =>
    Object.fromEntries(
      Object.entries(graph.params).map(([name, spec]) => [
        name,
        inputFor(fieldKind(spec.schema), spec.schema, initialValue(spec)),
      ]),
    ),
  );
  const [busy, setBusy] = useState<"preview" | "start" | undefined>();
  const pending = useRef(false); // set synchronously: a second click before React re-renders is ignored
  const [plan, setPlan] = useState<SelectivePlanResponse | undefined>();
  const [outcome, setOutcome] = useState<Outcome>();

  const fields: Array<FieldState> = useMemo(
    () =>
      Object.entries(graph.params).map(([name, spec]) => {
        const kind = fieldKind(spec.schema);
        const input = inputs[name] ?? "";
        const parsed = parseInput(kind, spec.schema, input);
        const changed = parsed.error === undefined && !sameValue(parsed.value, initialValue(spec));
        return { changed, input, kind, name, parsed, spec };
      }),
    [graph.params, inputs],
  );

  // Anything the user changes makes the last preview or start stale.
  const edited = useCallback(() => {
    setPlan(undefined);
    setOutcome(undefined);
  }, []);
  const toggle = useCallback(
    (name: string) => {
      setSelected((previous) => {
        const next = new Set(previous);
        if (!next.delete(name)) {
          next.add(name);
        }
        return next;
      });
      edited();
    },
    [edited],
  );
  const changeInput = useCallback(
    (name: string, input: FieldInput) => {
      setInputs((previous) => ({ ...previous, [name]: input }));
      edited();
    },
    [edited],
  );

  const invalid = fields.filter((field) => field.parsed.error !== undefined);
  const blocker = !graph.run.finished
    ? `This run is ${graph.run.state ?? "not finished"}: a selective run takes its outputs from a finished run (success or failed). Open a finished run to start one.`
    : selected.size === 0
      ? "Click the steps to run again on the graph."
      : invalid.length > 0
        ? `Fix ${invalid.map((field) => field.name).join(", ")} first.`
        : undefined;
  const startedThisForm = outcome?.kind === "started";

  const submit = async (dryRun: boolean) => {
    if (pending.current || blocker !== undefined) {
      return;
    }
    pending.current = true;
    setBusy(dryRun ? "preview" : "start");
    setOutcome(undefined);
    try {
      const answer = await postSelectiveRun(dagId, {
        dry_run: dryRun,
        include_between: includeBetween,
        parameters: Object.fromEntries(
          fields.filter((field) => field.changed).map((field) => [field.name, field.parsed.value]),
        ),
        selected_steps: graph.steps.map((step) => step.name).filter((name) => selected.has(name)),
        source_run_id: runId,
      });
      setPlan(answer);
      if (!dryRun && answer.run_id) {
        setOutcome({ kind: "started", runId: answer.run_id });
      }
    } catch (error) {
      setPlan(undefined);
      setOutcome({ kind: "error", message: error instanceof ApiError ? error.message : String(error) });
    } finally {
      pending.current = false;
      setBusy(undefined);
    }
  };

  return (
    <Stack gap={5}>
      <Box>
        <PipelineGraph
          dagId={dagId}
          edges={graph.edges}
          onToggle={toggle}
          selected={selected}
          steps={graph.steps}
        />
        <Box mt={2}>
          <GraphLegend />
        </Box>
      </Box>
      <HStack flexWrap="wrap" gap={4}>
        <Text data-testid="selection" fontSize="sm">
          {selected.size === 0
            ? "No step selected."
            : `Selected: ${graph.steps
                .filter((step) => selected.has(step.name))
                .map((step) => step.name)
                .join(", ")}`}
        </Text>
        {selected.size > 0 ? (
          <Button
            onClick={() => {
              setSelected(new Set());
              edited();
            }}
            size="xs"
            variant="ghost"
          >
            Clear selection
          </Button>
        ) : undefined}
        <Checkbox.Root
          checked={includeBetween}
          onCheckedChange={(details) => {
            setIncludeBetween(details.checked === true);
            edited();
          }}
          size="sm"
        >
          <Checkbox.HiddenInput />
          <Checkbox.Control />
          <Checkbox.Label>Also select the steps between selected steps</Checkbox.Label>
        </Checkbox.Root>
      </HStack>
      <Box>
        <Heading as="h3" mb={3} size="sm">
          Parameters (this run's values; change one to override it)
        </Heading>
        <ParameterFields fields={fields} onChange={changeInput} />
      </Box>
      <HStack flexWrap="wrap" gap={3}>
        <Button
          data-testid="preview"
          disabled={blocker !== undefined || busy !== undefined}
          loading={busy === "preview"}
          loadingText="Previewing…"
          onClick={() => void submit(true)}
          variant="outline"
        >
          Preview
        </Button>
        <Button
          colorPalette="blue"
          data-testid="start"
          disabled={blocker !== undefined || busy !== undefined || startedThisForm}
          loading={busy === "start"}
          loadingText="Starting…"
          onClick={() => void submit(false)}
        >
          Start selective run
        </Button>
        {blocker ? (
          <Text color="fg.muted" data-testid="blocker" fontSize="sm">
            {blocker}
          </Text>
        ) : undefined}
      </HStack>
      {outcome?.kind === "error" ? (
        <Alert.Root data-testid="error" status="error">
          <Alert.Indicator />
          <Alert.Content>
            <Alert.Title>The request failed</Alert.Title>
            <Alert.Description whiteSpace="pre-wrap">{outcome.message}</Alert.Description>
          </Alert.Content>
        </Alert.Root>
      ) : undefined}
      {outcome?.kind === "started" ? (
        <Alert.Root data-testid="started" status="success">
          <Alert.Indicator />
          <Alert.Content>
            <Alert.Title>Selective run started</Alert.Title>
            <Alert.Description>
              Open it: <RunLink dagId={dagId} runId={outcome.runId} testId="new-run-link" />. Change the
              selection or a parameter to start another.
            </Alert.Description>
          </Alert.Content>
        </Alert.Root>
      ) : undefined}
      {plan ? (
        <PlanPreview
          dagId={dagId}
          order={graph.steps.map((step) => step.name)}
          params={graph.params}
          plan={plan}
        />
      ) : undefined}
    </Stack>
  );
};
