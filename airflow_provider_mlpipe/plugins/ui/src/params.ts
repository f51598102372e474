// Typed parameter fields from a DAG param's JSON schema: which input to show, the text it starts
// with, and what the typed text means (a value, or an error to show beside the field).
//
// A number field keeps the text the user typed and parses it here, so "abc" is shown as an error
// rather than silently becoming null, and an empty field is an error (or null where the schema
// allows null) rather than 0.
import type { JsonSchema, ParamSpec } from "./types";

export type FieldKind = "boolean" | "enum" | "integer" | "json" | "number" | "string";

/** What a field holds: text for text-like fields, a boolean for a checkbox, an index for an enum. */
export type FieldInput = boolean | string;

export type Parsed = { error: string; value?: undefined } | { error?: undefined; value: unknown };

const types = (schema: JsonSchema): Array<string> =>
  schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];

const allowsNull = (schema: JsonSchema): boolean => types(schema).includes("null");

export const fieldKind = (schema: JsonSchema): FieldKind => {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    return "enum";
  }
  const named = types(schema).filter((type) => type !== "null");
  if (named.length !== 1) {
    return "json";
  }
  const [type] = named;
  if (type === "integer" || type === "number" || type === "boolean" || type === "string") {
    return type;
  }
  return "json";
};

/** The value a field starts with: the run's value if it had one, else the default. */
export const initialValue = (spec: ParamSpec): unknown =>
  spec.has_run_value ? spec.run_value : spec.default;

/** The input a field starts with, for a value (see {@link FieldInput}). */
export const inputFor = (kind: FieldKind, schema: JsonSchema, value: unknown): FieldInput => {
  switch (kind) {
    case "boolean":
      return value === true;
    case "enum": {
      const index = (schema.enum ?? []).findIndex(
        (choice) => JSON.stringify(choice) === JSON.stringify(value),
      );
      return index < 0 ? "" : String(index);
    }
    case "json":
      return value === undefined || value === null ? "" : JSON.stringify(value);
    default:
      return value === undefined || value === null ? "" : String(value);
  }
};

const INTEGER = /^[+-]?\d+$/u;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/iu;

const checkRange = (schema: JsonSchema, value: number): string | undefined => {
  if (schema.minimum !== undefined && value < schema.minimum) {
    return `Must be at least ${schema.minimum}`;
  }
  if (schema.maximum !== undefined && value > schema.maximum) {
    return `Must be at most ${schema.maximum}`;
  }
  if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
    return `Must be more than ${schema.exclusiveMinimum}`;
  }
  if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
    return `Must be less than ${schema.exclusiveMaximum}`;
  }
  return undefined;
};

const parseNumber = (kind: "integer" | "number", schema: JsonSchema, text: string): Parsed => {
  const trimmed = text.trim();
  if (trimmed === "") {
    return allowsNull(schema)
      ? { value: null }
      : { error: `Enter ${kind === "integer" ? "a whole number" : "a number"}` };
  }
  const pattern = kind === "integer" ? INTEGER : NUMBER;
  const value = Number(trimmed);
  if (!pattern.test(trimmed) || !Number.isFinite(value)) {
    return { error: `"${trimmed}" is not ${kind === "integer" ? "a whole number" : "a number"}` };
  }
  if (kind === "integer" && !Number.isSafeInteger(value)) {
    return { error: `${trimmed} is too large` };
  }
  const rangeError = checkRange(schema, value);
  return rangeError === undefined ? { value } : { error: rangeError };
};

const parseString = (schema: JsonSchema, text: string): Parsed => {
  if (schema.minLength !== undefined && text.length < schema.minLength) {
    return { error: text === "" ? "Enter a value" : `At least ${schema.minLength} characters` };
  }
  if (schema.maxLength !== undefined && text.length > schema.maxLength) {
    return { error: `At most ${schema.maxLength} characters` };
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(text)) {
    return { error: `Must match ${schema.pattern}` };
  }
  return { value: text };
};

/** What the field's input means for a param with this schema. */
export const parseInput = (kind: FieldKind, schema: JsonSchema, input: FieldInput): Parsed => {
  switch (kind) {
    case "boolean":
      return { value: input === true };
    case "enum": {
      const choices = schema.enum ?? [];
      const index = Number(input);
      return input === "" || !(index in choices) ? { error: "Choose a value" } : { value: choices[index] };
    }
    case "integer":
    case "number":
      return parseNumber(kind, schema, String(input));
    case "string":
      return parseString(schema, String(input));
    default: {
      const text = String(input).trim();
      if (text === "") {
        return allowsNull(schema) ? { value: null } : { error: "Enter a JSON value" };
      }
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { error: "Not valid JSON" };
      }
    }
  }
};

export const sameValue = (left: unknown, right: unknown): boolean =>
  JSON.stringify(left) === JSON.stringify(right);

/** How an enum choice or a value is shown. */
export const showValue = (value: unknown): string =>
  typeof value === "string" ? value : value === undefined ? "(none)" : JSON.stringify(value);
