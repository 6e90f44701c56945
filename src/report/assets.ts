/** The chart library's files, read from the installed `uplot` package at report time. */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { ChartAssets } from "./render.js";

/** uPlot's minified IIFE build and stylesheet. */
export async function loadChartAssets(): Promise<ChartAssets> {
  const require = createRequire(import.meta.url);
  const [script, css] = await Promise.all([
    readFile(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8"),
    readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf8"),
  ]);
  return { script, css };
}
