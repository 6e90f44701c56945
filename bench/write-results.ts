import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

/**
 * Write a benchmark's results to `bench/results/<name>.json`, stamped with the machine facts that
 * make numbers comparable (date, Node version, CPUs, load average), and say where they went.
 */
export function writeBenchResults(name: string, results: Record<string, unknown>): string {
  const out = join(resultsDir, `${name}.json`);
  mkdirSync(resultsDir, { recursive: true });
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage1m: loadavg()[0],
  };
  writeFileSync(out, `${JSON.stringify({ bench: name, ...machine, ...results }, null, 2)}\n`);
  console.log(`wrote ${out}`);
  return out;
}
