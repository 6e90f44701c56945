/**
 * `tinker-ts eval`: grading answer rows (correct / wrong /
 * unparseable), the Wilson interval against hand-computed values, the JSON summary, and bad input
 * giving one line, exit code 1 or 2 and no output file.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evaluateAnswers, wilsonInterval } from "../../src/cli/gsm8k/evaluate.js";
import type { AnswerRow } from "../../src/cli/gsm8k/rows.js";
import { runCli } from "../../src/cli/main.js";
import { captureCli } from "./capture.js";

function answer(index: number, reference: string | null, response: string): AnswerRow {
  return {
    index,
    question: `q${index}`,
    answer: reference === null ? null : `work\n#### ${reference}`,
    reference,
    model: "tiny-bytes",
    renderer: "qwen3_instruct",
    response,
    extracted: null,
    stop_reason: "stop",
    termination: "stop_sequence",
    prompt_tokens: 10,
    completion_tokens: 4,
  };
}

const ROWS = [
  answer(0, "18", "so \\boxed{18}"),
  answer(1, "3", "The answer is \\boxed{3.0}"),
  answer(2, "72", "\\boxed{70}"),
  answer(3, "5", "five, I think: 5"),
  answer(4, null, "\\boxed{1}"),
];

let tmp: string;
let input: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "tinker-ts-eval-"));
  input = join(tmp, "answers.jsonl");
  await writeFile(input, ROWS.map((r) => `${JSON.stringify(r)}\n`).join(""));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("grading", () => {
  it("Wilson 95% intervals match hand-computed values", () => {
    // p=0.5, n=10: centre 0.5, half = 1.96*sqrt(0.025 + 0.0096)/1.384 = 0.2634
    const mid = wilsonInterval(5, 10);
    expect(mid.low).toBeCloseTo(0.2366, 4);
    expect(mid.high).toBeCloseTo(0.7634, 4);
    const none = wilsonInterval(0, 10);
    expect(none.low).toBe(0);
    expect(none.high).toBeCloseTo(0.2775, 4);
    const all = wilsonInterval(10, 10);
    expect(all.low).toBeCloseTo(0.7225, 4);
    expect(all.high).toBeCloseTo(1, 12);
    expect(wilsonInterval(0, 0)).toEqual({ low: 0, high: 1 });
  });

  it("bins rows into correct, wrong and unparseable; rows without a reference are not graded", () => {
    const boxed = evaluateAnswers(ROWS, { input: "x", grader: "boxed" });
    expect(boxed).toMatchObject({
      rows: 5,
      graded: 4,
      correct: 2,
      wrong: 1,
      unparseable: 1,
      no_reference: 1,
    });
    expect(boxed.accuracy).toBe(0.5);
    const lenient = evaluateAnswers(ROWS, { input: "x", grader: "lenient" });
    expect(lenient).toMatchObject({ correct: 3, wrong: 1, unparseable: 0 });
  });
});

describe("tinker-ts eval", () => {
  it("prints the accuracy line and writes the summary JSON", async () => {
    const r = await captureCli(() => runCli(["eval", input]));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^accuracy 50\.0% \(95% CI 15\.0%-85\.0%, Wilson\) on 4 questions: 2 correct, 1 wrong, 1 unparseable; 1 without a reference not graded$/m,
    );
    const summary = JSON.parse(await readFile(join(tmp, "answers.eval.json"), "utf8"));
    expect(summary).toMatchObject({
      grader: "boxed",
      correct: 2,
      graded: 4,
      ci95: { method: "wilson" },
    });
    expect(summary.ci95.low).toBeCloseTo(wilsonInterval(2, 4).low, 12);
  });

  it("bad input: one line, exit 1 or 2, no output file", async () => {
    const out = join(tmp, "never.json");
    const missing = await captureCli(() => runCli(["eval", join(tmp, "nope.jsonl"), "--out", out]));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^tinker-ts eval: cannot read JSONL file .*nope\.jsonl: ENOENT/);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);

    const bad = join(tmp, "bad.jsonl");
    await writeFile(bad, `${JSON.stringify(ROWS[0])}\n{"index": 1, "question": \n`);
    const malformed = await captureCli(() => runCli(["eval", bad, "--out", out]));
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/bad\.jsonl:2: invalid JSON/);

    const wrongShape = join(tmp, "shape.jsonl");
    await writeFile(wrongShape, `${JSON.stringify({ ...ROWS[0], response: 3 })}\n`);
    const shape = await captureCli(() => runCli(["eval", wrongShape, "--out", out]));
    expect(shape.code).toBe(1);
    expect(shape.stderr).toMatch(/shape\.jsonl:1: field "response" must be a string, got number 3/);

    const noRef = join(tmp, "noref.jsonl");
    await writeFile(noRef, `${JSON.stringify(ROWS[4])}\n`);
    const nothing = await captureCli(() => runCli(["eval", noRef, "--out", out]));
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/no row has a reference answer/);

    const grader = await captureCli(() =>
      runCli(["eval", input, "--grader", "exact", "--out", out]),
    );
    expect(grader.code).toBe(2);
    expect(grader.stderr).toMatch(
      /--grader must be one of boxed, lenient, got "exact" \(see tinker-ts eval --help\)/,
    );
    expect((await captureCli(() => runCli(["eval", input, "--out"]))).code).toBe(2);
    expect((await captureCli(() => runCli(["eval"]))).code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
