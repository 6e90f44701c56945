/**
 * The report of real recipe runs: a short SupervisedRecipe (GSM8K) and RLRecipe (the lowercase
 * env of examples/custom-env-rl.ts) on the real local server write their run dirs, and the page
 * made from them has the curves, checkpoints and rollouts those runs logged, drawn in Chromium.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lowercaseRecipe } from "../../examples/custom-env-rl.js";
import { RLRecipe } from "../../src/recipes/rl/recipe.js";
import { buildReport, chartSpecs, loadRun } from "../../src/report/index.js";
import { gsm8kSft, startRecipeServer } from "../recipes/fixtures.js";
import { checkPage, SKIP_BROWSER } from "./browser.js";

let s: Awaited<ReturnType<typeof startRecipeServer>>;
beforeAll(async () => {
  s = await startRecipeServer("report-real");
});
afterAll(async () => {
  await s?.close();
});

describe("report of real runs", () => {
  it("SFT: loss, learning rate and tokens/s curves and the final checkpoint", async () => {
    const logDir = join(s.dir, "sft");
    await gsm8kSft(
      { logDir, service: s.service, lrSchedule: "linear" },
      { rows: 12, testSize: 4, batchSize: 4, epochs: 1, evalEvery: 1 },
    ).run();
    const run = await loadRun(logDir);
    const charts = chartSpecs(run.metrics).map((c) => c.id);
    expect(charts).toEqual(expect.arrayContaining(["loss", "lr", "tokens"]));
    expect(
      run.checkpoints.some((c) => c.final === true && typeof c.sampler_path === "string"),
    ).toBe(true);
    const file = join(s.dir, "sft.html");
    await writeFile(file, await buildReport(logDir));
    if (SKIP_BROWSER) return;
    const page = await checkPage(file, join(s.dir, "sft.png"));
    expect(page.errors).toEqual([]);
    expect(page.charts.map((c) => c.id)).toEqual(charts);
    for (const c of page.charts) expect(c.colouredPixels, c.id).toBeGreaterThan(0);
  });

  it("RL: reward, KL and entropy curves and a table of real rollouts", async () => {
    const logDir = join(s.dir, "rl");
    const recipe = lowercaseRecipe({ logDir, steps: 2, seed: 1 });
    await new RLRecipe({
      ...recipe.config,
      service: s.service,
      progress: false,
      saveEvery: 0,
    }).run();
    const run = await loadRun(logDir);
    const charts = chartSpecs(run.metrics).map((c) => c.id);
    expect(charts).toEqual(expect.arrayContaining(["reward", "kl", "entropy"]));
    expect(run.rollouts.length).toBeGreaterThan(0);
    expect(run.rollouts[0]!.prompt).toEqual(expect.any(String));
    expect(run.rollouts[0]!.response).toEqual(expect.any(String));
    const html = await buildReport(logDir);
    expect(html).toContain('id="rollouts"');
    const file = join(s.dir, "rl.html");
    await writeFile(file, html);
    if (SKIP_BROWSER) return;
    const page = await checkPage(file, join(s.dir, "rl.png"));
    expect(page.errors).toEqual([]);
    for (const c of page.charts) expect(c.colouredPixels, c.id).toBeGreaterThan(0);
  });
});
