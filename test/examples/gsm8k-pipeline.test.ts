/**
 * The main job (`npm start`, examples/gsm8k-pipeline.ts), reduced to a few rows and questions:
 * on the embedded local engine with no key it chains sft -> sample (base and tuned) -> eval ->
 * report and writes every output file.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("npm start (the GSM8K pipeline)", () => {
  it("runs sft, inference with the base and the tuned model, eval and the report", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tinker-ts-pipeline-"));
    try {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        TINKER_TS_CACHE_DIR: join(dir, "cache"),
        PIPELINE_DIR: join(dir, "out"),
        PIPELINE_ROWS: "24",
        PIPELINE_QUESTIONS: "2",
        PIPELINE_MAX_TOKENS: "8",
      };
      delete env.TINKER_API_KEY;
      delete env.TINKER_BASE_URL;
      const { stdout, stderr } = await run(
        process.execPath,
        ["--import", "tsx", "examples/gsm8k-pipeline.ts"],
        { env, timeout: 240_000 },
      );
      expect(stderr).toContain("$ tinker-ts sft");
      expect(stderr).toMatch(/fine-tuned model: tinker:\/\/.+\/sampler_weights\/final/);
      expect(stdout).toMatch(/train NLL \d+\.\d+ -> \d+\.\d+ over 1 steps/);
      expect(stdout).toMatch(/held-out NLL \d+\.\d+/);
      expect(stdout).toMatch(/answers with a parseable \\boxed\{\}: base \d+% -> tuned \d+%/);
      const out = join(dir, "out");
      for (const name of ["base", "tuned"]) {
        const rows = (await readFile(join(out, `answers-${name}.jsonl`), "utf8"))
          .trim()
          .split("\n");
        expect(rows).toHaveLength(2);
        const evaluation = JSON.parse(await readFile(join(out, `eval-${name}.json`), "utf8"));
        expect(evaluation).toMatchObject({ graded: 2 });
      }
      const html = await readFile(join(out, "report.html"), "utf8");
      expect(html).toMatch(/^<!doctype html>/i);
      expect(html).toContain("train_mean_nll");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
