import { describe, expect, it } from "vitest";

import { describeDetail, httpErrorMessage } from "./api";

describe("error messages", () => {
  it("give a refusal's reason", () => {
    expect(httpErrorMessage(400, "Bad Request", JSON.stringify({ detail: "select at least one step" }))).toBe(
      "Refused (HTTP 400): select at least one step",
    );
  });
  it("list FastAPI's validation errors", () => {
    const body = JSON.stringify({ detail: [{ loc: ["body", "selected_steps"], msg: "Field required" }] });
    expect(httpErrorMessage(422, "Unprocessable Entity", body)).toBe(
      "Refused (HTTP 422): body.selected_steps: Field required",
    );
  });
  it("say a server failure is one, with whatever text came", () => {
    expect(httpErrorMessage(500, "Internal Server Error", "Internal Server Error")).toBe(
      "The Airflow API server failed (HTTP 500): Internal Server Error",
    );
    expect(httpErrorMessage(502, "Bad Gateway", "")).toBe(
      "The Airflow API server failed (HTTP 502): Bad Gateway",
    );
  });
  it("tell a lost session and a missing permission apart", () => {
    expect(httpErrorMessage(401, "", JSON.stringify({ detail: "Not authenticated" }))).toMatch(
      /^Not signed in/,
    );
    expect(httpErrorMessage(403, "", JSON.stringify({ detail: "Forbidden" }))).toBe(
      "Not allowed (HTTP 403): Forbidden.",
    );
  });
  it("read only FastAPI's detail", () => {
    expect(describeDetail({ other: 1 })).toBeUndefined();
    expect(describeDetail(null)).toBeUndefined();
  });
});
