import { describe, expect, it } from "vitest";

import { type FieldKind, fieldKind, initialValue, inputFor, parseInput } from "./params";
import type { JsonSchema, ParamSpec } from "./types";

const spec = (schema: ParamSpec["schema"], extra: Partial<ParamSpec> = {}): ParamSpec => ({
  default: undefined,
  description: null,
  has_run_value: false,
  run_value: null,
  schema,
  ...extra,
});

describe("fieldKind", () => {
  const cases: Array<[JsonSchema, FieldKind]> = [
    [{ type: "integer" }, "integer"],
    [{ type: "number" }, "number"],
    [{ type: ["integer", "null"] }, "integer"],
    [{ type: "boolean" }, "boolean"],
    [{ type: "string" }, "string"],
    [{ enum: ["fast", "careful"], type: "string" }, "enum"],
    [{ type: "object" }, "json"],
    [{}, "json"],
  ];
  it.each(cases)("%j is a %s field", (schema, kind) => {
    expect(fieldKind(schema)).toBe(kind);
  });
});

describe("integer and number fields", () => {
  it("never read an empty field as 0", () => {
    expect(parseInput("integer", { type: "integer" }, "")).toEqual({ error: "Enter a whole number" });
    expect(parseInput("number", { type: "number" }, "  ")).toEqual({ error: "Enter a number" });
  });
  it("read an empty field as null only where the schema allows null", () => {
    expect(parseInput("integer", { type: ["integer", "null"] }, "")).toEqual({ value: null });
  });
  it("refuse what is not a number instead of sending null or NaN", () => {
    expect(parseInput("integer", { type: "integer" }, "abc")).toEqual({
      error: '"abc" is not a whole number',
    });
    expect(parseInput("number", { type: "number" }, "1.2.3")).toEqual({ error: '"1.2.3" is not a number' });
    expect(parseInput("integer", { type: "integer" }, "2.5")).toEqual({
      error: '"2.5" is not a whole number',
    });
    expect(parseInput("number", { type: "number" }, "Infinity").error).toBeDefined();
    expect(parseInput("integer", { type: "integer" }, "0x10").error).toBeDefined();
  });
  it("read numbers as numbers", () => {
    expect(parseInput("integer", { type: "integer" }, " -7 ")).toEqual({ value: -7 });
    expect(parseInput("number", { type: "number" }, "0.05")).toEqual({ value: 0.05 });
    expect(parseInput("number", { type: "number" }, "1e-3")).toEqual({ value: 0.001 });
    expect(parseInput("number", { type: "number" }, ".5")).toEqual({ value: 0.5 });
  });
  it("check the schema's bounds", () => {
    expect(parseInput("integer", { minimum: 1, type: "integer" }, "0")).toEqual({
      error: "Must be at least 1",
    });
    expect(parseInput("number", { exclusiveMaximum: 1, type: "number" }, "1")).toEqual({
      error: "Must be less than 1",
    });
  });
});

describe("other fields", () => {
  it("booleans are checkboxes", () => {
    expect(inputFor("boolean", { type: "boolean" }, true)).toBe(true);
    expect(parseInput("boolean", { type: "boolean" }, false)).toEqual({ value: false });
  });
  it("enums keep their choices' own values", () => {
    const schema = { enum: [1, "two", null] };
    expect(inputFor("enum", schema, "two")).toBe("1");
    expect(parseInput("enum", schema, "0")).toEqual({ value: 1 });
    expect(parseInput("enum", schema, "2")).toEqual({ value: null });
    expect(parseInput("enum", schema, "")).toEqual({ error: "Choose a value" });
  });
  it("strings follow their length and pattern", () => {
    expect(parseInput("string", { type: "string" }, "")).toEqual({ value: "" });
    expect(parseInput("string", { minLength: 1, type: "string" }, "")).toEqual({ error: "Enter a value" });
    expect(parseInput("string", { pattern: "^[a-z]+$", type: "string" }, "A1").error).toBe(
      "Must match ^[a-z]+$",
    );
  });
  it("anything else is JSON", () => {
    expect(parseInput("json", { type: "object" }, '{"a": 1}')).toEqual({ value: { a: 1 } });
    expect(parseInput("json", { type: "object" }, "{a")).toEqual({ error: "Not valid JSON" });
  });
});

describe("initial values", () => {
  it("are the run's value when it had one, else the default", () => {
    expect(initialValue(spec({ type: "integer" }, { default: 5 }))).toBe(5);
    expect(initialValue(spec({ type: "integer" }, { default: 5, has_run_value: true, run_value: 8 }))).toBe(
      8,
    );
    expect(inputFor("number", { type: "number" }, 2)).toBe("2");
    expect(inputFor("integer", { type: "integer" }, null)).toBe("");
  });
});
