/**
 * examples/gsm8k-sft.ts and examples/gsm8k-rl.ts run as programs on the embedded local engine
 * (no key, no base URL) with the in-repo GSM8K rows, and print the fine-tuned model reference.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { readJsonLines } from "../../src/recipes/run-dir.js";
import { GSM8K_DIR } from "../fixture-paths.js";

const run = promisify(execFile);

async function example(name: string, args: string[]) {
  const dir = await mkdtemp(join(tmpdir(), `tinker-ts-${name}-`));
  const env: NodeJS.ProcessEnv = { ...process.env, TINKER_TS_CACHE_DIR: join(dir, "cache") };
  delete env.TINKER_API_KEY;
  delete env.TINKER_BASE_URL;
  const logDir = join(dir, "run");
  try {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", `examples/${name}.ts`, ...args, "--log-dir", logDir, "--no-progress"],
      { env, timeout: 180_000 },
    );
    const metrics = (await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl")))
      .rows;
    return { ref: stdout.trim(), metrics };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("GSM8K training programs", () => {
  it("gsm8k-sft.ts fine-tunes on GSM8K rows and prints the model reference", async () => {
    const { ref, metrics } = await example("gsm8k-sft", [
      ...["--data", join(GSM8K_DIR, "train.jsonl"), "--limit", "8", "--batch-size", "4"],
      ...["--answer-only", "--lora-rank", "8", "--lr", "0.004"],
    ]);
    expect(ref).toMatch(/^tinker:\/\/.+\/sampler_weights\/final$/);
    expect(metrics.map((m) => m.step)).toEqual([0, 1]);
    expect(metrics[0]!.train_mean_nll).toBeGreaterThan(0);
  }, 200_000);

  it("gsm8k-rl.ts trains on GSM8K rows with the grader and prints the model reference", async () => {
    const { ref, metrics } = await example("gsm8k-rl", [
      ...["--train", join(GSM8K_DIR, "train.jsonl"), "--no-test", "--max-steps", "1"],
      ...["--groups-per-batch", "2", "--group-size", "2", "--max-tokens", "4", "--lr", "0.001"],
    ]);
    expect(ref).toMatch(/^tinker:\/\/.+\/sampler_weights\/final$/);
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toHaveProperty("env/all/correct");
  }, 200_000);
});
