// The dry run's answer: what the selective run would do with every step, and the parameter values
// it would use.
import { Badge, Box, Heading, Table, Text } from "@chakra-ui/react";

import { showValue } from "../params";
import type { ParamSpec, SelectivePlanResponse } from "../types";
import { RunLink } from "./RunLink";

type Props = {
  readonly dagId: string;
  readonly order: Array<string>;
  readonly params: Record<string, ParamSpec>;
  readonly plan: SelectivePlanResponse;
};

const StepFate = ({
  dagId,
  name,
  plan,
}: {
  readonly dagId: string;
  readonly name: string;
  readonly plan: SelectivePlanResponse;
}) => {
  if (plan.selected_steps.includes(name)) {
    return (
      <Badge colorPalette="running" variant="solid">
        runs
      </Badge>
    );
  }
  if (plan.reused_steps.includes(name)) {
    return (
      <Text as="span">
        <Badge colorPalette="info" mr={2}>
          reused
        </Badge>
        from run <RunLink dagId={dagId} runId={plan.source_run_id} />
      </Text>
    );
  }
  if (plan.reused_skipped_steps.includes(name)) {
    return (
      <Text as="span">
        <Badge colorPalette="skipped" mr={2}>
          reused (skipped)
        </Badge>
        skipped in run <RunLink dagId={dagId} runId={plan.source_run_id} />, so skipped again
      </Text>
    );
  }
  return (
    <Text as="span" color="fg.muted">
      <Badge mr={2} variant="outline">
        not run
      </Badge>
      {plan.not_run[name] ?? ""}
    </Text>
  );
};

export const PlanPreview = ({ dagId, order, params, plan }: Props) => (
  <Box data-testid="plan-preview">
    <Heading as="h3" mb={2} size="sm">
      What the run will do
    </Heading>
    <Table.Root size="sm" variant="outline">
      <Table.Header>
        <Table.Row>
          <Table.ColumnHeader>Step</Table.ColumnHeader>
          <Table.ColumnHeader>Fate</Table.ColumnHeader>
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {order.map((name) => (
          <Table.Row data-testid={`plan-${name}`} key={name}>
            <Table.Cell fontFamily="mono">{name}</Table.Cell>
            <Table.Cell>
              <StepFate dagId={dagId} name={name} plan={plan} />
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table.Root>
    <Heading as="h3" mb={2} mt={4} size="sm">
      Parameter values it will use
    </Heading>
    <Table.Root size="sm" variant="outline">
      <Table.Body>
        {Object.entries(params).map(([name, spec]) => (
          <Table.Row data-testid={`plan-param-${name}`} key={name}>
            <Table.Cell fontFamily="mono" width="40%">
              {name}
            </Table.Cell>
            <Table.Cell fontFamily="mono">
              {name in plan.parameters
                ? showValue(plan.parameters[name])
                : `${showValue(spec.default)} (default)`}
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table.Root>
  </Box>
);
