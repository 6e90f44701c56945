/**
 * Headless Chromium (Debian's `chromium` package) driven by playwright-core, for checking that a
 * report page draws. No browser is downloaded: the system one is used, with a fresh profile.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** True when the browser tests should be skipped (TINKER_TS_SKIP_BROWSER=1). */
export const SKIP_BROWSER = process.env.TINKER_TS_SKIP_BROWSER === "1";

/** Throws, saying how to install it, when the browser is missing. */
export function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with "apt-get install -y chromium" (Debian), ` +
        "or set TINKER_TS_SKIP_BROWSER=1 to skip the browser checks",
    );
  }
}

/** What the page showed: per chart its coloured-pixel count, and any errors or network requests. */
export interface PageCheck {
  charts: { id: string; canvases: number; colouredPixels: number }[];
  errors: string[];
  /** Requests that were not for the page file itself (the page must need no network). */
  requests: string[];
}

// Runs in the page (a string: this project compiles without the DOM types). Series strokes are
// saturated colours; axes, grid and text are grey, so coloured pixels mean a series was drawn.
const INSPECT_CHARTS = `[...document.querySelectorAll("[data-chart]")].map((el) => {
  let coloured = 0;
  const canvases = [...el.querySelectorAll("canvas")];
  for (const canvas of canvases) {
    const ctx = canvas.getContext("2d");
    if (!ctx || canvas.width === 0 || canvas.height === 0) continue;
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < px.length; i += 4) {
      const r = px[i], g = px[i + 1], b = px[i + 2], a = px[i + 3];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
    }
  }
  return { id: el.dataset.chart || "", canvases: canvases.length, colouredPixels: coloured };
})`;

/** Open `htmlFile`, wait for it to load, inspect its charts and save a screenshot. */
export async function checkPage(htmlFile: string, screenshot: string): Promise<PageCheck> {
  requireChromium();
  const profile = await mkdtemp(join(tmpdir(), "tinker-ts-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1200, height: 900 },
  });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    const url = pathToFileURL(htmlFile).href;
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("request", (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    await page.goto(url, { waitUntil: "load" });
    const charts = (await page.evaluate(INSPECT_CHARTS)) as PageCheck["charts"];
    await page.screenshot({ path: screenshot, fullPage: true });
    return { charts, errors, requests };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}
