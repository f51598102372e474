import { describe, expect, it } from "vitest";

import { curvedPath, layoutGraph, NODE_HEIGHT, NODE_WIDTH } from "./layout";

// The abalone pipeline: Preprocess feeds Evaluate directly too, Train feeds RegisterModel.
const ABALONE = [
  { name: "Preprocess", upstream: [] },
  { name: "Train", upstream: ["Preprocess"] },
  { name: "Evaluate", upstream: ["Preprocess", "Train"] },
  { name: "CheckMse", upstream: ["Evaluate"] },
  { name: "RegisterModel", upstream: ["CheckMse", "Train"] },
  { name: "FailOnMse", upstream: ["CheckMse"] },
];

const overlaps = (a: { x: number; y: number }, b: { x: number; y: number }) =>
  Math.abs(a.x - b.x) < NODE_WIDTH && Math.abs(a.y - b.y) < NODE_HEIGHT;

describe("layoutGraph", () => {
  const layout = layoutGraph(ABALONE);
  const at = Object.fromEntries(layout.nodes.map((node) => [node.name, node]));

  it("puts each step right of every step it depends on", () => {
    for (const step of ABALONE) {
      for (const upstream of step.upstream) {
        expect(at[upstream].x).toBeLessThan(at[step.name].x);
      }
    }
    expect(at.RegisterModel.x).toBe(at.FailOnMse.x);
  });

  it("never puts two steps on top of each other, and keeps them inside its size", () => {
    for (const [index, node] of layout.nodes.entries()) {
      for (const other of layout.nodes.slice(index + 1)) {
        expect(overlaps(node, other), `${node.name} / ${other.name}`).toBe(false);
      }
      expect(node.x + NODE_WIDTH).toBeLessThanOrEqual(layout.width);
      expect(node.y).toBeGreaterThanOrEqual(0);
      expect(node.y + NODE_HEIGHT).toBeLessThanOrEqual(layout.height);
    }
  });

  it("routes an edge that skips columns around the steps between, not behind them", () => {
    const edge = layout.edges.find(
      (candidate) => candidate.from === "Preprocess" && candidate.to === "Evaluate",
    );
    expect(edge).toBeDefined();
    const [, ...inner] = edge?.points.slice(0, -1) ?? [];
    expect(inner.length).toBeGreaterThan(0);
    for (const [x, y] of inner) {
      const inside = (node: { x: number; y: number }) =>
        x >= node.x && x <= node.x + NODE_WIDTH && y >= node.y && y <= node.y + NODE_HEIGHT;
      expect(layout.nodes.some(inside)).toBe(false);
    }
  });

  it("draws every edge from the right of its upstream step to the left of its downstream step", () => {
    for (const edge of layout.edges) {
      const [startX] = edge.points[0];
      const [endX] = edge.points[edge.points.length - 1];
      expect(startX).toBe(at[edge.from].x + NODE_WIDTH);
      expect(endX).toBe(at[edge.to].x);
    }
    expect(layout.edges).toHaveLength(7);
  });

  it("copes with no steps and with a step alone", () => {
    expect(layoutGraph([]).nodes).toEqual([]);
    expect(layoutGraph([{ name: "Only", upstream: ["Missing"] }]).nodes).toEqual([
      { name: "Only", x: 0, y: 0 },
    ]);
  });
});

describe("curvedPath", () => {
  it("joins the points with horizontal S-curves", () => {
    expect(
      curvedPath([
        [0, 0],
        [10, 20],
      ]),
    ).toBe("M 0 0 C 5 0, 5 20, 10 20");
    expect(curvedPath([])).toBe("");
  });
});
