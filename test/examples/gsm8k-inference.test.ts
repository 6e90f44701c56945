/**
 * examples/gsm8k-inference.ts runs as written on a fresh machine: no API key and no base URL, so
 * the embedded local engine answers (tiny-bytes); its output is examples/gsm8k-eval.ts's input.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseAnswerRow } from "../../src/cli/gsm8k/rows.js";
import { gsm8kSlice } from "../cli/local-server.js";

const run = promisify(execFile);

describe("examples/gsm8k-inference.ts", () => {
  it("answers GSM8K questions on the embedded engine, and eval grades the output", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "tinker-ts-inference-example-"));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, TINKER_TS_CACHE_DIR: join(tmp, "cache") };
      delete env.TINKER_API_KEY;
      delete env.TINKER_BASE_URL;
      const questions = await gsm8kSlice(tmp, 2);
      const out = join(tmp, "answers.jsonl");
      const args = ["--import", "tsx", "examples/gsm8k-inference.ts", questions];
      const { stdout, stderr } = await run(
        process.execPath,
        [...args, "--model", "tiny-bytes", "--out", out, "--max-tokens", "4"],
        { env, timeout: 120_000 },
      );
      expect(stderr).toContain("local CPU engine");
      expect(stdout).toMatch(/answered 2 questions, skipped 0 already answered/);
      const rows = (await readFile(out, "utf8"))
        .trim()
        .split("\n")
        .map((l) => parseAnswerRow(JSON.parse(l)));
      expect(rows.map((r) => r.reference).sort()).toEqual(["18", "3"]);

      const graded = await run(
        process.execPath,
        ["--import", "tsx", "examples/gsm8k-eval.ts", out, "--out", join(tmp, "eval.json")],
        { env, timeout: 60_000 },
      );
      expect(graded.stdout).toMatch(/^accuracy .* on 2 questions: /m);
      expect(JSON.parse(await readFile(join(tmp, "eval.json"), "utf8")).graded).toBe(2);

      const bad = await run(process.execPath, [...args, "--model", "tiny-bytes"], { env }).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect(bad).toMatchObject({ code: 2 });
      expect((bad as { stderr: string }).stderr).toMatch(/^tinker-ts sample: --out is required/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
