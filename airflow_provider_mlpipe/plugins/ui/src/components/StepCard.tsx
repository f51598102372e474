// One step on the graph: its name, kind, state and fate in the run, and a toggle to select it.
//
// The fates look different at a glance: a step that ran has a solid border in its state's colour, a
// reused one a dashed border and a "reused" badge with its source run, a step that did not run a
// dotted grey border on a muted card. A selected step has a thick blue ring and a tick.
import { Badge, Box, chakra, HStack, Text } from "@chakra-ui/react";

import type { GraphStep } from "../types";
import { NODE_HEIGHT, NODE_WIDTH } from "../layout";
import { RunLink } from "./RunLink";

type Look = {
  badge: string;
  badgePalette: string;
  border: string;
  borderStyle: string;
  bg: string;
  muted: boolean;
};

export const FATE_LABELS: Record<GraphStep["fate"], string> = {
  not_run: "did not run",
  pending: "not run yet",
  ran: "ran",
  reused: "reused",
  reused_skipped: "reused (skipped there)",
};

const lookOf = (step: GraphStep): Look => {
  const palette = step.state ?? "none";
  switch (step.fate) {
    case "ran":
      return {
        badge: palette,
        badgePalette: palette,
        bg: "bg.panel",
        border: `${palette}.solid`,
        borderStyle: "solid",
        muted: false,
      };
    case "reused":
      return {
        badge: "reused",
        badgePalette: "info",
        bg: "bg.subtle",
        border: "success.solid",
        borderStyle: "dashed",
        muted: false,
      };
    case "reused_skipped":
      return {
        badge: "reused · skipped",
        badgePalette: "skipped",
        bg: "bg.muted",
        border: "skipped.solid",
        borderStyle: "dashed",
        muted: true,
      };
    case "not_run":
      return {
        badge: palette === "skipped" ? "not run" : palette,
        badgePalette: palette,
        bg: "bg.muted",
        border: "border.emphasized",
        borderStyle: "dotted",
        muted: true,
      };
    default:
      return {
        badge: step.state ?? "no status",
        badgePalette: palette,
        bg: "bg.panel",
        border: "border.emphasized",
        borderStyle: "solid",
        muted: true,
      };
  }
};

const footerText = (step: GraphStep): string | undefined => {
  if (step.failure_reason) {
    return step.failure_reason;
  }
  if (step.kind === "condition" && step.outcome !== null) {
    return `outcome: ${String(step.outcome)}`;
  }
  return step.note ?? undefined;
};

type Props = {
  readonly dagId: string;
  readonly step: GraphStep;
  readonly selected: boolean;
  readonly x: number;
  readonly y: number;
  readonly onToggle: (name: string) => void;
};

export const StepCard = ({ dagId, onToggle, selected, step, x, y }: Props) => {
  const look = lookOf(step);
  const footer = footerText(step);
  const details = [step.kind, step.try_number ? `try ${step.try_number}` : undefined]
    .filter(Boolean)
    .join(" · ");

  return (
    <Box
      bg={look.bg}
      borderColor={look.border}
      borderRadius="md"
      borderStyle={look.borderStyle}
      borderWidth="2px"
      boxShadow={selected ? "0 0 0 3px var(--chakra-colors-blue-solid)" : "sm"}
      data-fate={step.fate}
      data-selected={selected}
      data-testid={`step-${step.name}`}
      height={`${NODE_HEIGHT}px`}
      left={`${x}px`}
      position="absolute"
      px={2}
      py={1.5}
      top={`${y}px`}
      width={`${NODE_WIDTH}px`}
    >
      <chakra.button
        _focusVisible={{ outline: "2px solid", outlineColor: "blue.focusRing", outlineOffset: "2px" }}
        aria-label={`${selected ? "Deselect" : "Select"} step ${step.name}`}
        aria-pressed={selected}
        borderRadius="md"
        cursor="pointer"
        inset={0}
        onClick={() => onToggle(step.name)}
        position="absolute"
        title={`${step.name}: ${FATE_LABELS[step.fate]}${step.note ? ` (${step.note})` : ""}. Click to ${selected ? "deselect" : "select"}.`}
        type="button"
      />
      <HStack gap={1.5} pointerEvents="none">
        <Box
          alignItems="center"
          bg={selected ? "blue.solid" : "transparent"}
          borderColor={selected ? "blue.solid" : "border.emphasized"}
          borderRadius="sm"
          borderWidth="2px"
          color="blue.contrast"
          display="flex"
          flexShrink={0}
          fontSize="xs"
          height="16px"
          justifyContent="center"
          width="16px"
        >
          {selected ? "✓" : ""}
        </Box>
        <Text
          color={look.muted ? "fg.muted" : "fg"}
          flex={1}
          fontWeight="semibold"
          title={step.name}
          truncate
        >
          {step.name}
        </Text>
      </HStack>
      <HStack gap={1.5} mt={0.5} pointerEvents="none">
        <Badge
          colorPalette={look.badgePalette}
          flexShrink={0}
          size="sm"
          variant={step.fate === "ran" ? "solid" : "subtle"}
        >
          {look.badge}
        </Badge>
        <Text color="fg.muted" fontSize="xs" truncate>
          {details}
        </Text>
      </HStack>
      {step.fate === "reused" || step.fate === "reused_skipped" ? (
        <HStack color="fg.muted" fontSize="xs" gap={1} pointerEvents="none" position="relative" zIndex={1}>
          <Text flexShrink={0}>from run</Text>
          {step.source_run_id ? (
            <RunLink dagId={dagId} runId={step.source_run_id} testId={`source-${step.name}`} truncate />
          ) : (
            "?"
          )}
        </HStack>
      ) : footer ? (
        <Text
          color={step.failure_reason ? "failed.fg" : "fg.muted"}
          fontSize="xs"
          pointerEvents="none"
          truncate
          title={footer}
        >
          {footer}
        </Text>
      ) : undefined}
    </Box>
  );
};
