// The pipeline graph, left to right: edges drawn in SVG under the step cards; click a card to select it.
import { Badge, Box, HStack, Text } from "@chakra-ui/react";
import { useMemo } from "react";

import { curvedPath, layoutGraph } from "../layout";
import type { GraphEdge, GraphStep } from "../types";
import { StepCard } from "./StepCard";

const MARGIN = 12;

type Props = {
  readonly dagId: string;
  readonly steps: Array<GraphStep>;
  readonly edges: Array<GraphEdge>;
  readonly selected: ReadonlySet<string>;
  readonly onToggle: (name: string) => void;
};

export const PipelineGraph = ({ dagId, edges, onToggle, selected, steps }: Props) => {
  const layout = useMemo(() => layoutGraph(steps), [steps]);
  const labels = useMemo(
    () => new Map(edges.map((edge) => [`${edge.from}->${edge.to}`, edge.label])),
    [edges],
  );
  const byName = useMemo(() => new Map(steps.map((step) => [step.name, step])), [steps]);

  return (
    <Box borderColor="border" borderRadius="md" borderWidth="1px" overflowX="auto" p={`${MARGIN}px`}>
      <Box
        height={`${layout.height}px`}
        minWidth={`${layout.width}px`}
        position="relative"
        width={`${layout.width}px`}
      >
        <svg
          aria-hidden="true"
          height={layout.height}
          style={{ left: 0, overflow: "visible", position: "absolute", top: 0 }}
          width={layout.width}
        >
          <defs>
            <marker id="mlpipe-arrow" markerHeight="8" markerWidth="8" orient="auto" refX="7" refY="4">
              <path d="M 0 0 L 8 4 L 0 8 z" fill="var(--chakra-colors-border-emphasized)" />
            </marker>
          </defs>
          {layout.edges.map((edge) => (
            <path
              d={curvedPath(edge.points)}
              fill="none"
              key={`${edge.from}->${edge.to}`}
              markerEnd="url(#mlpipe-arrow)"
              stroke="var(--chakra-colors-border-emphasized)"
              strokeWidth={1.5}
            />
          ))}
        </svg>
        {layout.edges.map((edge) => {
          const label = labels.get(`${edge.from}->${edge.to}`);
          const [start, end] = edge.points.slice(-2);
          if (!label || start === undefined || end === undefined) {
            return undefined;
          }
          return (
            <Badge
              colorPalette={label === "true" ? "success" : "failed"}
              key={`label ${edge.from}->${edge.to}`}
              left={`${(start[0] + end[0]) / 2}px`}
              position="absolute"
              size="xs"
              top={`${(start[1] + end[1]) / 2}px`}
              transform="translate(-50%, -50%)"
              variant="surface"
            >
              {label}
            </Badge>
          );
        })}
        {layout.nodes.map((node) => {
          const step = byName.get(node.name);
          return step ? (
            <StepCard
              dagId={dagId}
              key={node.name}
              onToggle={onToggle}
              selected={selected.has(node.name)}
              step={step}
              x={node.x}
              y={node.y}
            />
          ) : undefined;
        })}
      </Box>
    </Box>
  );
};

const LegendItem = ({
  borderStyle,
  label,
  bg,
}: {
  readonly borderStyle: string;
  readonly label: string;
  readonly bg: string;
}) => (
  <HStack gap={1.5}>
    <Box
      bg={bg}
      borderColor="fg.muted"
      borderRadius="sm"
      borderStyle={borderStyle}
      borderWidth="2px"
      height="14px"
      width="22px"
    />
    <Text color="fg.muted" fontSize="xs">
      {label}
    </Text>
  </HStack>
);

export const GraphLegend = () => (
  <HStack flexWrap="wrap" gap={4}>
    <LegendItem bg="bg.panel" borderStyle="solid" label="ran in this run" />
    <LegendItem bg="bg.subtle" borderStyle="dashed" label="reused from an earlier run (never started)" />
    <LegendItem bg="bg.muted" borderStyle="dotted" label="skipped / did not run" />
    <HStack gap={1.5}>
      <Box
        borderRadius="sm"
        boxShadow="0 0 0 3px var(--chakra-colors-blue-solid)"
        height="14px"
        width="22px"
      />
      <Text color="fg.muted" fontSize="xs">
        selected to run again
      </Text>
    </HStack>
  </HStack>
);
