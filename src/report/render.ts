/**
 * The run report as one self-contained HTML page: the chart library and the data are inlined, so
 * the file opens from disk, offline, years later. Pure: data and library text in, HTML out.
 */
import { type ChartSpec, chartSpecs } from "./charts.js";
import { escapeHtml, jsonForScript } from "./html.js";
import type { RolloutRow, RunData } from "./run-data.js";

/** The chart library's files, inlined into the page. */
export interface ChartAssets {
  /** uPlot's IIFE build (defines the global `uPlot`). */
  script: string;
  css: string;
}

/** Options of {@link renderReport}. */
export interface RenderOptions {
  /** Page title. Default "tinker-ts run report: <dir>". */
  title?: string;
  /** Rollouts shown from each of the first and the last iteration. Default 8. */
  rolloutsPerIteration?: number;
  /** Characters of a prompt shown before it is folded (its end is shown). Default 300. */
  promptPreviewChars?: number;
}

const CHECKPOINT_COLUMNS = [
  "name",
  "step",
  "epoch",
  "batch",
  "final",
  "state_path",
  "sampler_path",
] as const;

const STYLE = `
body{font-family:system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
.muted{color:#5b6475}.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart{border:1px solid #dde2ea;border-radius:6px;padding:8px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
pre,.text{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;word-break:break-word}
pre{background:#f6f8fa;padding:10px;border-radius:6px;max-height:420px;overflow:auto}
.text{max-width:560px;max-height:260px;overflow:auto}
summary{cursor:pointer}.ok{color:#11783a}.bad{color:#b3261e}
`;

// Runs in the page: one uPlot chart per spec; a failure is logged (the test reads the console).
const CHART_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var colors = ["#2f6fde", "#e0612b", "#1f9e5a", "#9a4fd0", "#c93b6b", "#7a7f0a"];
  data.charts.forEach(function (c) {
    var el = document.getElementById("chart-" + c.id);
    try {
      var series = [{ label: "step" }].concat(c.series.map(function (s, i) {
        return { label: s.label, stroke: colors[i % colors.length], width: 2, spanGaps: true };
      }));
      new uPlot({
        title: c.title, width: 520, height: 260,
        scales: { x: { time: false } },
        axes: [{ label: "step" }, { label: c.unit, size: 70, values: function (u, splits) {
          return splits.map(function (v) { return v == null ? "" : String(+v.toPrecision(3)); });
        } }],
        series: series,
      }, [c.steps].concat(c.series.map(function (s) { return s.values; })), el);
    } catch (err) {
      console.error("chart " + c.id + " failed: " + err);
    }
  });
})();
`;

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return "<td></td>";
  if (typeof value === "number") return `<td class="num">${escapeHtml(formatNumber(value))}</td>`;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return `<td>${escapeHtml(text)}</td>`;
}

function checkpointsTable(records: readonly Record<string, unknown>[]): string {
  if (records.length === 0) return `<p class="muted">No checkpoints were recorded.</p>`;
  const head = CHECKPOINT_COLUMNS.map((c) => `<th>${c}</th>`).join("");
  const body = records
    .map((r) => `<tr>${CHECKPOINT_COLUMNS.map((c) => cell(r[c])).join("")}</tr>`)
    .join("\n");
  return `<table id="checkpoints"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/**
 * The rollouts shown: up to `n` of the first and of the last iteration, spread over the groups
 * (every group's first trajectory before any group's second).
 */
export function sampleRollouts(rows: readonly RolloutRow[], n: number): RolloutRow[] {
  if (rows.length === 0) return [];
  const first = rows[0]!.iteration;
  const last = rows[rows.length - 1]!.iteration;
  const pick = (it: number) =>
    rows
      .filter((r) => r.iteration === it)
      .sort((a, b) => a.trajIdx - b.trajIdx || a.groupIdx - b.groupIdx)
      .slice(0, n);
  return first === last ? pick(first) : [...pick(first), ...pick(last)];
}

function foldedText(text: string | null, preview: number): string {
  if (text === null) return `<span class="muted">(not recorded)</span>`;
  if (text.length <= preview) return `<div class="text">${escapeHtml(text)}</div>`;
  const tail = `…${text.slice(text.length - preview)}`;
  return `<details><summary class="text">${escapeHtml(tail)}</summary><div class="text">${escapeHtml(text)}</div></details>`;
}

function rolloutsTable(rows: readonly RolloutRow[], perIteration: number, preview: number): string {
  if (rows.length === 0)
    return `<p class="muted">No rollout summaries (an RL run writes them).</p>`;
  const shown = sampleRollouts(rows, perIteration);
  const body = shown
    .map((r) => {
      const correct =
        r.correct === null
          ? "<td></td>"
          : `<td class="${r.correct > 0 ? "ok" : "bad"}">${r.correct > 0 ? "yes" : "no"}</td>`;
      return `<tr>${cell(r.iteration)}${cell(r.split)}${cell(r.groupIdx)}<td>${foldedText(r.prompt, preview)}</td><td>${foldedText(r.response, preview * 4)}</td>${cell(r.reward)}${correct}</tr>`;
    })
    .join("\n");
  return [
    `<p class="muted">${shown.length} of ${rows.length} rollouts, from the first and the last iteration, one per group first.</p>`,
    `<table id="rollouts"><thead><tr><th>iteration</th><th>split</th><th>group</th><th>prompt</th><th>response</th><th>reward</th><th>correct</th></tr></thead><tbody>`,
    body,
    "</tbody></table>",
  ].join("\n");
}

function summary(run: RunData): string {
  const last = run.metrics[run.metrics.length - 1];
  if (last === undefined) return `<p class="muted">No metrics were logged yet.</p>`;
  const keys = Object.keys(last).filter((k) => k !== "step");
  const items = keys.map((k) => `<tr><th>${escapeHtml(k)}</th>${cell(last[k])}</tr>`).join("\n");
  return `<p>${run.metrics.length} metrics rows; the last (step ${escapeHtml(String(last.step ?? "?"))}):</p><table id="last-metrics">${items}</table>`;
}

function chartsSection(charts: readonly ChartSpec[]): string {
  if (charts.length === 0) return `<p class="muted">No metrics to chart.</p>`;
  return `<div class="charts">${charts
    .map(
      (c) =>
        `<div class="chart" id="chart-${escapeHtml(c.id)}" data-chart="${escapeHtml(c.id)}"></div>`,
    )
    .join("")}</div>`;
}

/** The report page for `run`. */
export function renderReport(
  run: RunData,
  assets: ChartAssets,
  options: RenderOptions = {},
): string {
  const title = options.title ?? `tinker-ts run report: ${run.dir}`;
  const charts = chartSpecs(run.metrics);
  const config =
    run.config === null
      ? `<p class="muted">No config.json.</p>`
      : `<pre id="config">${escapeHtml(JSON.stringify(run.config, null, 2))}</pre>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${assets.css}</style>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">Generated by tinker-ts report. Charts drawn with uPlot (MIT, inlined).</p>
<h2>Summary</h2>
${summary(run)}
<h2>Training curves</h2>
${chartsSection(charts)}
<h2>Checkpoints</h2>
${checkpointsTable(run.checkpoints)}
<h2>Sample rollouts</h2>
${rolloutsTable(run.rollouts, options.rolloutsPerIteration ?? 8, options.promptPreviewChars ?? 300)}
<h2>Config</h2>
${config}
<script id="report-data" type="application/json">${jsonForScript({ charts })}</script>
<script>${assets.script.replace(/<\/script/gi, "<\\/script")}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}
