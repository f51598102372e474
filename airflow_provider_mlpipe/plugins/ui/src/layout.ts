// A left-to-right layered layout of the pipeline graph (the Sugiyama scheme, small enough for
// pipelines of tens of steps): each step goes in the column after its deepest upstream step, an edge
// that spans several columns passes through a gap slot in each column between (so it never runs
// behind a step), and rows are ordered by the mean row of their neighbours to limit crossings.

export type LayoutInput = { name: string; upstream: Array<string> };

export type PlacedNode = { name: string; x: number; y: number };

export type PlacedEdge = { from: string; to: string; points: Array<[number, number]> };

export type Layout = { nodes: Array<PlacedNode>; edges: Array<PlacedEdge>; width: number; height: number };

export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 84;
const COLUMN_GAP = 56;
const ROW_GAP = 16;
const PASS_HEIGHT = 28; // the slot an edge takes in a column it passes through
const ORDERING_SWEEPS = 4;

type Slot = { key: string; node?: string; height: number };

const columnsOf = (steps: Array<LayoutInput>): Map<string, number> => {
  const known = new Set(steps.map((step) => step.name));
  const upstream = new Map(steps.map((step) => [step.name, step.upstream.filter((name) => known.has(name))]));
  const column = new Map<string, number>();
  const visiting = new Set<string>();
  const place = (name: string): number => {
    const placed = column.get(name);
    if (placed !== undefined) {
      return placed;
    }
    if (visiting.has(name)) {
      return 0; // a cycle cannot come from Airflow; do not loop on one
    }
    visiting.add(name);
    const value = Math.max(-1, ...(upstream.get(name) ?? []).map(place)) + 1;
    visiting.delete(name);
    column.set(name, value);
    return value;
  };
  steps.forEach((step) => place(step.name));
  return column;
};

const mean = (values: Array<number>): number | undefined =>
  values.length === 0 ? undefined : values.reduce((sum, value) => sum + value, 0) / values.length;

export const layoutGraph = (steps: Array<LayoutInput>): Layout => {
  const column = columnsOf(steps);
  const columnCount = Math.max(0, ...column.values()) + 1;
  const columns: Array<Array<Slot>> = Array.from({ length: columnCount }, () => []);
  steps.forEach((step) =>
    columns[column.get(step.name) ?? 0].push({ height: NODE_HEIGHT, key: step.name, node: step.name }),
  );

  // Each edge as a chain of slot keys, one per column from its start to its end.
  const chains: Array<{ from: string; to: string; keys: Array<string> }> = [];
  const links = new Map<string, Set<string>>(); // slot key -> neighbouring slot keys
  const link = (left: string, right: string) => {
    links.set(left, (links.get(left) ?? new Set()).add(right));
    links.set(right, (links.get(right) ?? new Set()).add(left));
  };
  for (const step of steps) {
    for (const from of step.upstream) {
      if (!column.has(from)) {
        continue;
      }
      const keys = [from];
      for (let index = (column.get(from) ?? 0) + 1; index < (column.get(step.name) ?? 0); index += 1) {
        const key = `${from}->${step.name}@${index}`;
        columns[index].push({ height: PASS_HEIGHT, key });
        keys.push(key);
      }
      keys.push(step.name);
      keys.slice(1).forEach((key, index) => link(keys[index], key));
      chains.push({ from, keys, to: step.name });
    }
  }

  // Order each column by the mean position of its neighbours, sweeping right then left.
  const position = new Map<string, number>();
  const remember = () =>
    columns.forEach((slots) => slots.forEach((slot, index) => position.set(slot.key, index)));
  remember();
  for (let sweep = 0; sweep < ORDERING_SWEEPS; sweep += 1) {
    const order = sweep % 2 === 0 ? columns.slice(1) : columns.slice(0, -1).reverse();
    for (const slots of order) {
      const weight = new Map(
        slots.map((slot) => [
          slot.key,
          mean([...(links.get(slot.key) ?? [])].map((key) => position.get(key) ?? 0)),
        ]),
      );
      slots.sort(
        (left, right) =>
          (weight.get(left.key) ?? position.get(left.key) ?? 0) -
          (weight.get(right.key) ?? position.get(right.key) ?? 0),
      );
      slots.forEach((slot, index) => position.set(slot.key, index));
    }
  }

  // Stack each column's slots, centred on the tallest column.
  const columnHeight = (slots: Array<Slot>) =>
    slots.reduce((sum, slot) => sum + slot.height, 0) + Math.max(0, slots.length - 1) * ROW_GAP;
  const height = Math.max(NODE_HEIGHT, ...columns.map(columnHeight));
  const centre = new Map<string, [number, number]>();
  columns.forEach((slots, index) => {
    let y = (height - columnHeight(slots)) / 2;
    const x = index * (NODE_WIDTH + COLUMN_GAP);
    for (const slot of slots) {
      centre.set(slot.key, [x, y + slot.height / 2]);
      y += slot.height + ROW_GAP;
    }
  });

  const nodes = steps.map((step) => {
    const [x, y] = centre.get(step.name) ?? [0, 0];
    return { name: step.name, x, y: y - NODE_HEIGHT / 2 };
  });
  const edges = chains.map(({ from, keys, to }) => ({
    from,
    // Leaves the upstream step on its right, crosses each column between straight, enters on the left.
    points: keys.flatMap((key, index): Array<[number, number]> => {
      const [x, y] = centre.get(key) ?? [0, 0];
      if (index === 0) {
        return [[x + NODE_WIDTH, y]];
      }
      return index === keys.length - 1
        ? [[x, y]]
        : [
            [x, y],
            [x + NODE_WIDTH, y],
          ];
    }),
    to,
  }));
  return {
    edges,
    height,
    nodes,
    width: Math.max(NODE_WIDTH, columnCount * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP),
  };
};

/** An SVG path through the points, as horizontal S-curves (each point is entered and left level). */
export const curvedPath = (points: Array<[number, number]>): string => {
  const [first, ...rest] = points;
  if (first === undefined) {
    return "";
  }
  let path = `M ${first[0]} ${first[1]}`;
  let previous = first;
  for (const point of rest) {
    const bend = (point[0] - previous[0]) / 2;
    path += ` C ${previous[0] + bend} ${previous[1]}, ${point[0] - bend} ${point[1]}, ${point[0]} ${point[1]}`;
    previous = point;
  }
  return path;
};
