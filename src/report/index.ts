/**
 * The run report: `buildReport(logDir)` reads a recipe's run directory and returns one
 * self-contained HTML page (training curves, config, checkpoints, sample rollouts).
 */
import { loadChartAssets } from "./assets.js";
import { type RenderOptions, renderReport } from "./render.js";
import { loadRun } from "./run-data.js";

export type { ChartSpec } from "./charts.js";
export { chartSpecs, tokensPerSecond } from "./charts.js";
export { escapeHtml, jsonForScript } from "./html.js";
export type { ChartAssets, RenderOptions } from "./render.js";
export { renderReport, sampleRollouts } from "./render.js";
export type { RolloutRow, RunData } from "./run-data.js";
export { loadRun, rolloutRow } from "./run-data.js";

/** Read the run in `logDir` and render its report. */
export async function buildReport(logDir: string, options: RenderOptions = {}): Promise<string> {
  const [run, assets] = await Promise.all([loadRun(logDir), loadChartAssets()]);
  return renderReport(run, assets, options);
}
