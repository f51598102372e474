import { describe, expect, it } from "vitest";

import { inputLine, modelRows, origin, outputLine, parameterLine, shortDigest } from "./lineage";
import type { LineageGraph, StepLineage } from "./types";

const digest = `sha256:${"ab".repeat(32)}`;

const step = (fields: Partial<StepLineage>): StepLineage => ({
  cache_hit: false,
  code_digest: null,
  code_files: {},
  fingerprint: null,
  inputs: [],
  kind: "processing",
  model: null,
  name: "Prep",
  origin_run_id: null,
  outputs: [],
  parameters: {},
  source_run_id: null,
  state: "success",
  ...fields,
});

describe("lineage wording", () => {
  it("shortens digests as the command line does", () => {
    expect(shortDigest(digest)).toBe("abababababab");
    expect(shortDigest(null)).toBe("-");
  });
  it("names literal inputs by location and artifacts by producer", () => {
    const base = {
      digest,
      kind: null,
      location: null,
      name: "inputs.raw",
      output: null,
      size: 1,
      step: null,
      type: "file",
    };
    expect(inputLine({ ...base, kind: "literal", location: "data/raw.csv" })).toBe(
      "data/raw.csv = abababababab",
    );
    expect(inputLine({ ...base, kind: "artifact", output: "clean", step: "Prep" })).toBe(
      "Prep.clean = abababababab",
    );
    expect(outputLine({ digest, name: "model", size: 3, type: "directory" })).toBe(
      "model (directory) = abababababab",
    );
  });
  it("says where outputs come from", () => {
    expect(origin(step({ fingerprint: digest }), "r2")).toBe("computed in this run");
    expect(origin(step({ cache_hit: true, fingerprint: digest, source_run_id: "r1" }), "r2")).toBe(
      "cache hit: outputs of run r1",
    );
    expect(origin(step({ origin_run_id: "r0", source_run_id: "r1" }), "r2")).toBe(
      "reused from run r1 (computed in run r0)",
    );
    expect(origin(step({}), "r2")).toBe("did not run");
  });
  it("lists parameters by name", () => {
    expect(parameterLine({ b: 2, a: "x" })).toBe('a="x", b=2');
  });
  it("gives each step of a model's lineage the data it read", () => {
    const graph: LineageGraph = {
      direction: "upstream",
      edges: [
        { from: digest, label: "inputs.raw", to: "step:p/r1/Prep" },
        { from: "sha256:cd", label: "clean", to: "step:p/r1/Train" },
      ],
      nodes: [
        {
          digest,
          id: digest,
          label: "data/raw.csv",
          literal: true,
          location: "data/raw.csv",
          type: "artifact",
        },
        {
          id: "step:p/r1/Prep",
          label: "Prep (processing)",
          parameters: {},
          run_id: "r1",
          step: "Prep",
          type: "step",
        },
        {
          id: "step:p/r1/Train",
          label: "Train",
          parameters: { Alpha: 0.5 },
          run_id: "r1",
          step: "Train",
          type: "step",
        },
      ],
      root: "model:p:1",
    };
    expect(modelRows(graph)).toEqual([
      {
        data: ["data/raw.csv = abababababab"],
        id: "step:p/r1/Prep",
        parameters: "",
        runId: "r1",
        step: "Prep",
      },
      { data: [], id: "step:p/r1/Train", parameters: "Alpha=0.5", runId: "r1", step: "Train" },
    ]);
  });
});
