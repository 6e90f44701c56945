/**
 * The run report: a hand-written SFT-like and RL-like run dir render to one self-contained page
 * that headless Chromium draws without errors or network requests; text from the run is escaped;
 * `tinker-ts report` writes it and refuses bad input in one line.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import {
  buildReport,
  chartSpecs,
  escapeHtml,
  jsonForScript,
  loadRun,
  sampleRollouts,
  tokensPerSecond,
} from "../../src/report/index.js";
import { captureCli } from "../cli/capture.js";
import { checkPage, SKIP_BROWSER } from "./browser.js";
import { HOSTILE, writeRlRun, writeSftRun } from "./run-dirs.js";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "tinker-ts-report-"));
  await writeSftRun(join(tmp, "sft"));
  await writeRlRun(join(tmp, "rl"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("report data", () => {
  it("escapes HTML and script-breaking JSON", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
    );
    const json = jsonForScript({ s: "</script><!-- \u2028" });
    expect(json).not.toMatch(/[<>\u2028]/);
    expect(JSON.parse(json)).toEqual({ s: "</script><!-- \u2028" });
  });

  it("derives tokens/s from num_tokens over the growth of time/total", () => {
    const rows: Record<string, number>[] = [
      { step: 0, num_tokens: 100, "time/total": 2 },
      { step: 1, num_tokens: 300, "time/total": 5 },
      { step: 2, num_tokens: 50 },
      { step: 3, num_tokens: 10, "time/total": 5 },
    ];
    expect(tokensPerSecond(rows)).toEqual([50, 100, null, null]);
  });

  it("picks the charts whose metrics the run logged", async () => {
    const sft = await loadRun(join(tmp, "sft"));
    expect(sft.metrics).toHaveLength(12); // the torn last line is skipped
    expect(chartSpecs(sft.metrics).map((c) => c.id)).toEqual(["loss", "bpb", "lr", "tokens"]);
    const loss = chartSpecs(sft.metrics)[0]!;
    expect(loss.series.map((s) => s.label)).toEqual(["train_mean_nll", "test/nll"]);
    expect(loss.series[1]!.values.filter((v) => v !== null)).toHaveLength(3);
    const rl = await loadRun(join(tmp, "rl"));
    expect(chartSpecs(rl.metrics).map((c) => c.id)).toEqual([
      "reward",
      "accuracy",
      "lr",
      "tokens",
      "kl",
      "entropy",
    ]);
    expect(rl.rollouts).toHaveLength(15);
    expect(rl.rollouts[0]).toMatchObject({ iteration: 0, reward: 1, correct: 1 });
    expect(rl.rollouts[0]!.prompt).toContain("Question 0 of iteration 0");
  });

  it("shows rollouts of the first and last iteration, one per group before seconds", async () => {
    const rl = await loadRun(join(tmp, "rl"));
    const shown = sampleRollouts(rl.rollouts, 2);
    expect(shown.map((r) => [r.iteration, r.groupIdx, r.trajIdx])).toEqual([
      [0, 0, 0],
      [0, 1, 0],
      [4, 0, 0],
      [4, 1, 0],
    ]);
  });

  it("inlines the chart library and escapes every text from the run", async () => {
    const html = await buildReport(join(tmp, "rl"));
    expect(html).toContain("uPlot");
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/i);
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;/script&gt;&lt;script&gt;window.__pwned");
    const sft = await buildReport(join(tmp, "sft"));
    expect(sft).toContain("tinker://run-1/sampler_weights/final");
    expect(sft).toContain("No rollout summaries");
  });
});

describe.skipIf(SKIP_BROWSER)("report in headless Chromium", () => {
  for (const kind of ["sft", "rl"] as const) {
    it(`${kind}: every chart draws, no errors, no network, screenshot saved`, async () => {
      const file = join(tmp, `${kind}.html`);
      await writeFile(file, await buildReport(join(tmp, kind)));
      const shot = join(tmp, `${kind}.png`);
      const page = await checkPage(file, shot);
      expect(page.errors).toEqual([]);
      expect(page.requests).toEqual([]);
      expect(page.charts.length).toBe(kind === "sft" ? 4 : 6);
      for (const chart of page.charts) {
        expect(chart.canvases, chart.id).toBeGreaterThan(0);
        expect(chart.colouredPixels, chart.id).toBeGreaterThan(50);
      }
      expect((await stat(shot)).size).toBeGreaterThan(10_000);
    });
  }
});

describe("tinker-ts report", () => {
  it("writes <logdir>/report.html, or --out", async () => {
    const r = await captureCli(() => runCli(["report", join(tmp, "rl")]));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(join(tmp, "rl", "report.html"));
    expect(await readFile(join(tmp, "rl", "report.html"), "utf8")).toContain("<!doctype html>");
    const out = join(tmp, "out", "r.html");
    expect((await captureCli(() => runCli(["report", join(tmp, "sft"), "--out", out]))).code).toBe(
      0,
    );
    expect(existsSync(out)).toBe(true);
  });

  it("refuses a missing dir, a dir without a run, a corrupt file and bad usage in one line", async () => {
    const missing = await captureCli(() => runCli(["report", join(tmp, "nope")]));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^tinker-ts report: no run directory at .*nope; pass the logDir/,
    );
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);

    const empty = await mkdtemp(join(tmp, "empty-"));
    const noRun = await captureCli(() => runCli(["report", empty, "--out", join(empty, "x.html")]));
    expect(noRun.code).toBe(1);
    expect(noRun.stderr).toMatch(/holds no run \(no config.json or metrics.jsonl\)/);
    expect(existsSync(join(empty, "x.html"))).toBe(false);

    const bad = await mkdtemp(join(tmp, "bad-"));
    await writeFile(join(bad, "metrics.jsonl"), `{"step": 0}\nnot json\n{"step": 2}\n`);
    const corrupt = await captureCli(() => runCli(["report", bad]));
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toMatch(/metrics.jsonl line 2 is not valid JSON/);
    expect(existsSync(join(bad, "report.html"))).toBe(false);

    const usage = await captureCli(() => runCli(["report"]));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing <logdir> \(see tinker-ts report --help\)/);
    expect((await captureCli(() => runCli(["report", tmp, "--bogus"]))).code).toBe(2);
    const help = await captureCli(() => runCli(["report", "--help"]));
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: tinker-ts report <logdir>");
  });
});
