// Drives Debian's Chromium through the "Selective run" view of a running Airflow, as a user would.
// Started by tests/integration/test_selective_view_browser.py, which made a finished reference run
// first and checks on the server side afterwards what this script did through the browser.
//
// Input (JSON in argv[2]): url, dagId, referenceRunId, plainDagId, plainRunId, artifacts (a folder
// for screenshots), chromium (the browser's path).
// Output: one JSON line on stdout: the new run's id and what the browser saw. Any failed check
// throws, and the script exits non-zero with the message.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

const input = JSON.parse(process.argv[2]);
const WAIT = { timeout: 60_000 };
const RUN_TIMEOUT_MS = 240_000;
mkdirSync(input.artifacts, { recursive: true });

const viewPath = (dagId, runId) =>
  `/dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}/plugin/mlpipe-selective-run`;

// The token a login would put in the UI's "_token" cookie; the test servers' all-admins auth
// manager hands it out without credentials (and signs every request in as the admin anyway).
const token = (await (await fetch(`${input.url}/auth/token`)).json()).access_token;

const browser = await chromium.launch({
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
  executablePath: input.chromium,
});

/** A signed-in page in the given colour mode (next-themes, as the UI's own mode switch stores it). */
const openPage = async (theme) => {
  const context = await browser.newContext({ colorScheme: theme, viewport: { height: 1700, width: 1600 } });
  await context.addInitScript((mode) => window.localStorage.setItem("theme", mode), theme);
  await context.addCookies([{ name: "_token", url: input.url, value: token }]);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { page, problems };
};

/**
 * How light the view's heading text and a step card's background are drawn (0 black .. 1 white):
 * dark on light, or light on dark. The browser paints each computed colour (the theme's are oklch)
 * on a canvas, so any CSS colour syntax compares.
 */
const themeColours = (page, step) =>
  page.evaluate((name) => {
    const canvas = document.createElement("canvas");
    canvas.width = 1;
    canvas.height = 1;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const lightness = (colour) => {
      context.clearRect(0, 0, 1, 1);
      context.fillStyle = colour;
      context.fillRect(0, 0, 1, 1);
      const [red, green, blue] = context.getImageData(0, 0, 1, 1).data;
      return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255;
    };
    const heading = [...document.querySelectorAll("h2")].find((node) => node.textContent === "Selective run");
    const card = document.querySelector(`[data-testid="step-${name}"]`);
    return {
      card: lightness(getComputedStyle(card).backgroundColor),
      htmlClass: document.documentElement.className,
      text: lightness(getComputedStyle(heading).color),
    };
  }, step);

const shot = async (page, name) => {
  const path = join(input.artifacts, name);
  await page.screenshot({ fullPage: true, path });
  return path;
};

const fieldError = (page, name) => page.getByTestId(`param-error-${name}`);
const errorAlert = (page) => page.getByTestId("error");
const seen = {};

// 1. A DAG that is not an mlpipe pipeline: the tab says so.
{
  const { page } = await openPage("light");
  await page.goto(input.url + viewPath(input.plainDagId, input.plainRunId));
  await page.getByTestId("not-pipeline").waitFor(WAIT);
  seen.notPipeline = await page.getByTestId("not-pipeline").innerText();
  assert.match(seen.notPipeline, /not an mlpipe pipeline/i);
  await shot(page, "not-a-pipeline-light.png");
  await page.context().close();
}

// 2. The view of the finished reference run, in light mode.
const { page, problems } = await openPage("light");
const posts = [];
page.on("request", (request) => {
  if (request.method() === "POST" && request.url().includes("/selectiveRuns")) {
    posts.push(JSON.parse(request.postData() ?? "{}"));
  }
});
await page.goto(input.url + viewPath(input.dagId, input.referenceRunId));
await page.getByTestId("step-Transform").waitFor(WAIT);
const fates = {};
for (const step of ["Load", "Transform", "Total", "Check", "Big", "Small"]) {
  fates[step] = await page.getByTestId(`step-${step}`).getAttribute("data-fate");
}
assert.deepEqual(fates, { Big: "ran", Check: "ran", Load: "ran", Small: "not_run", Total: "ran", Transform: "ran" });
const light = await themeColours(page, "Transform");
assert.ok(!light.htmlClass.includes("dark") && light.text < 0.5 && light.card > 0.5, JSON.stringify(light));
await shot(page, "view-light.png");

// Select on the graph: a click toggles a step.
for (const step of ["Transform", "Total"]) {
  await page.getByTestId(`step-${step}`).click();
  assert.equal(await page.getByTestId(`step-${step}`).getAttribute("data-selected"), "true");
}
assert.match(await page.getByTestId("selection").innerText(), /Selected: Transform, Total/);

// 3. Bad inputs are refused in place and block preview and start; nothing is sent.
const threshold = page.getByTestId("param-Threshold");
await threshold.fill("");
await fieldError(page, "Threshold").waitFor(WAIT);
seen.emptyInteger = await fieldError(page, "Threshold").innerText();
assert.match(seen.emptyInteger, /Enter a whole number/);
assert.ok(await page.getByTestId("preview").isDisabled(), "preview must be disabled with an empty number");
assert.ok(await page.getByTestId("start").isDisabled(), "start must be disabled with an empty number");
await threshold.fill("5");
const scale = page.getByTestId("param-Scale");
await scale.fill("abc");
seen.notANumber = await fieldError(page, "Scale").innerText();
assert.match(seen.notANumber, /"abc" is not a number/);
assert.ok(await page.getByTestId("preview").isDisabled() && (await page.getByTestId("start").isDisabled()));
await shot(page, "bad-input-light.png");
assert.equal(posts.length, 0, "an invalid form sent a request");
await scale.fill("3");
await fieldError(page, "Scale").waitFor({ state: "detached", ...WAIT });

// 4. Every server error is shown: a refusal (4xx, with the reason), a server failure (5xx), no network.
await page.getByTestId("step-Load").click(); // Load + Transform + Total is fine; now drop Transform:
await page.getByTestId("step-Transform").click(); // Load and Total with Transform between: refused
await page.getByTestId("preview").click();
await errorAlert(page).waitFor(WAIT);
seen.refused = await errorAlert(page).innerText();
assert.match(seen.refused, /HTTP 400/);
assert.match(seen.refused, /Transform lie between selected steps/);
await shot(page, "refused-light.png");
await page.getByTestId("step-Load").click();
await page.getByTestId("step-Transform").click();
const selectiveRuns = "**/mlpipe/api/v1/pipelines/*/selectiveRuns";
// The real server does not fail on demand: these two answers are made in the browser.
await page.route(selectiveRuns, (route) => route.fulfill({ body: "Internal Server Error", status: 500 }));
await page.getByTestId("preview").click();
await errorAlert(page).waitFor(WAIT);
seen.serverError = await errorAlert(page).innerText();
assert.match(seen.serverError, /failed \(HTTP 500\): Internal Server Error/);
await page.unroute(selectiveRuns);
await page.route(selectiveRuns, (route) => route.abort("connectionrefused"));
await page.getByTestId("preview").click();
await page.getByText("Could not reach the Airflow API server").waitFor(WAIT);
seen.networkError = await errorAlert(page).innerText();
await page.unroute(selectiveRuns);

// 5. Preview: every step's fate and the parameter values the run will use.
await page.getByTestId("preview").click();
await page.getByTestId("plan-preview").waitFor(WAIT);
const plan = {};
for (const step of ["Load", "Transform", "Total", "Check", "Big", "Small"]) {
  plan[step] = await page.getByTestId(`plan-${step}`).innerText();
}
assert.match(plan.Load, /reused/);
assert.ok(plan.Load.includes(input.referenceRunId), plan.Load);
assert.match(plan.Transform, /runs/);
assert.match(plan.Total, /runs/);
for (const step of ["Check", "Big", "Small"]) {
  assert.match(plan[step], /not run/);
}
assert.match(await page.getByTestId("plan-param-Scale").innerText(), /Scale\s+3/);
assert.match(await page.getByTestId("plan-param-Rows").innerText(), /Rows\s+3 \(default\)/);
seen.plan = plan;
await shot(page, "preview-light.png");

// 6. Start with a double click: one request, one run, then a link to it.
const before = posts.filter((body) => !body.dry_run).length;
await page.getByTestId("start").dblclick();
await page.getByTestId("started").waitFor(WAIT);
const starts = posts.filter((body) => !body.dry_run).length - before;
assert.equal(starts, 1, `a double click sent ${starts} start requests`);
assert.deepEqual(posts.at(-1).parameters, { Scale: 3 });
assert.deepEqual(posts.at(-1).selected_steps, ["Transform", "Total"]);
assert.ok(await page.getByTestId("start").isDisabled(), "start stays disabled until the form changes");
const newRunId = await page.getByTestId("new-run-link").innerText();
await shot(page, "started-light.png");
await page.getByTestId("new-run-link").click();
await page.waitForURL((url) => decodeURIComponent(url.pathname).endsWith(`/dags/${input.dagId}/runs/${newRunId}`), WAIT);
await page.getByText(newRunId).first().waitFor(WAIT);
assert.deepEqual(problems, []);
await page.context().close();

// 7. The new run's view in dark mode, opened at once: it follows the run until it has finished, then
// reused and not-run steps look different from steps that ran.
{
  const { page: dark, problems: darkProblems } = await openPage("dark");
  await dark.goto(input.url + viewPath(input.dagId, newRunId));
  await dark.getByTestId("step-Load").waitFor(WAIT);
  await dark
    .getByTestId("blocker")
    .filter({ hasText: "Click the steps to run again" })
    .waitFor({ timeout: RUN_TIMEOUT_MS });
  await shot(dark, "new-run-dark.png");
  const newFates = {};
  for (const step of ["Load", "Transform", "Total", "Check", "Big", "Small"]) {
    newFates[step] = await dark.getByTestId(`step-${step}`).getAttribute("data-fate");
  }
  assert.deepEqual(newFates, {
    Big: "not_run",
    Check: "not_run",
    Load: "reused",
    Small: "not_run",
    Total: "ran",
    Transform: "ran",
  });
  const styles = {};
  for (const step of ["Load", "Transform", "Check"]) {
    styles[step] = await dark.getByTestId(`step-${step}`).evaluate((node) => getComputedStyle(node).borderStyle);
  }
  assert.deepEqual(styles, { Check: "dotted", Load: "dashed", Transform: "solid" });
  const darkColours = await themeColours(dark, "Transform");
  assert.ok(darkColours.htmlClass.includes("dark") && darkColours.text > 0.5 && darkColours.card < 0.5, JSON.stringify(darkColours));
  assert.equal(await dark.getByTestId("source-Load").innerText(), input.referenceRunId);
  await dark.getByTestId("step-Transform").click();
  await dark.getByTestId("preview").click();
  await dark.getByTestId("plan-preview").waitFor(WAIT);
  await shot(dark, "preview-dark.png");
  // The reused step's source is a link to the run it came from.
  await dark.getByTestId("source-Load").click();
  await dark.waitForURL(
    (url) => decodeURIComponent(url.pathname).endsWith(`/dags/${input.dagId}/runs/${input.referenceRunId}`),
    WAIT,
  );
  assert.deepEqual(darkProblems, []);
  seen.darkStyles = styles;
}

await browser.close();
console.log(JSON.stringify({ newRunId, seen }));
