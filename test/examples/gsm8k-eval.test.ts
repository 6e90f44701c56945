/** examples/gsm8k-eval.ts runs as written: the same program and flags as `tinker-ts eval`. */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

const row = (index: number, reference: string, response: string) => ({
  index,
  question: `q${index}`,
  answer: `work\n#### ${reference}`,
  reference,
  model: "tiny-bytes",
  renderer: "qwen3_instruct",
  response,
  extracted: null,
  stop_reason: "stop",
  termination: "stop_sequence",
  prompt_tokens: 10,
  completion_tokens: 4,
});

describe("examples/gsm8k-eval.ts", () => {
  it("grades an answers file, prints the accuracy line and writes the JSON", async () => {
    const tmp = await mkdtemp(join(tmpdir(), "tinker-ts-eval-example-"));
    try {
      const input = join(tmp, "answers.jsonl");
      const rows = [
        row(0, "18", "\\boxed{18}"),
        row(1, "72", "\\boxed{70}"),
        row(2, "5", "it is 5"),
      ];
      await writeFile(input, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
      const out = join(tmp, "example.json");
      const { stdout } = await run(
        process.execPath,
        ["--import", "tsx", "examples/gsm8k-eval.ts", input, "--out", out, "--grader", "lenient"],
        { timeout: 60_000 },
      );
      expect(stdout).toMatch(
        /^accuracy 66\.7% .* on 3 questions: 2 correct, 1 wrong, 0 unparseable/m,
      );
      expect(JSON.parse(await readFile(out, "utf8"))).toMatchObject({
        grader: "lenient",
        correct: 2,
      });
      const help = await run(process.execPath, [
        "--import",
        "tsx",
        "examples/gsm8k-eval.ts",
        "--help",
      ]);
      expect(help.stdout).toContain("Usage: tinker-ts eval <answers.jsonl>");
      const bad = await run(process.execPath, [
        "--import",
        "tsx",
        "examples/gsm8k-eval.ts",
        "--grader",
      ]).catch((e: { code: number; stderr: string }) => e);
      expect((bad as { code: number }).code).toBe(2);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
