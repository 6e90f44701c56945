import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DatasetFormatError } from "../../src/datasets/errors.js";
import { Gsm8k } from "../../src/datasets/gsm8k.js";
import { gradeAnswer } from "../../src/envs/math-grading.js";
import { GSM8K_DIR } from "../fixture-paths.js";

const DATA = GSM8K_DIR;

describe("Gsm8k from local JSONL", () => {
  it("loads the 7,473-row train file", async () => {
    const ds = await Gsm8k.load({ split: "train", path: `${DATA}/train.jsonl` });
    expect(ds.length).toBe(7473);
    expect(ds.skipped).toBe(0);
    const first = ds.problems[0]!;
    expect(first.index).toBe(0);
    expect(first.question).toMatch(/Natalia sold clips/);
    expect(first.answer).toBe("72");
    expect(first.solution).toMatch(/#### 72$/);
    const odd = ds.problems.filter((p) => !/^-?\d+(\.\d+)?$/.test(p.answer));
    expect(odd).toEqual([]);
    const selfGradeFailures = ds.problems.filter((p) => !gradeAnswer(p.answer, p.answer));
    expect(selfGradeFailures).toEqual([]);
  });

  it("loads the 1,319-row test file", async () => {
    const ds = await Gsm8k.load({ split: "test", path: `${DATA}/test.jsonl` });
    expect(ds.length).toBe(1319);
    expect(ds.split).toBe("test");
  });

  it("malformed rows: error naming file and line, or skipped and counted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gsm8k-"));
    const p = join(dir, "bad.jsonl");
    await writeFile(
      p,
      [
        JSON.stringify({ question: "1+1?", answer: "1+1=2\n#### 2" }),
        JSON.stringify({ question: "no answer line", answer: "it is 3" }),
        JSON.stringify({ question: 5, answer: "#### 5" }),
        "{oops",
        JSON.stringify({ question: "2+2?", answer: "#### 4" }),
      ].join("\n"),
    );
    const err = await Gsm8k.load({ split: "test", path: p }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toMatch(
      /bad\.jsonl:2: field "answer" has no final "#### <answer>" line/,
    );
    const ds = await Gsm8k.load({ split: "test", path: p, onBadRow: "skip" });
    expect(ds.problems.map((q) => q.answer)).toEqual(["2", "4"]);
    expect(ds.skipped).toBe(3);
    expect(ds.skippedRows.map((r) => r.line)).toEqual([2, 3, 4]);
    expect(ds.skippedRows[1]!.reason).toMatch(/field "question" must be a string, got number 5/);
  });

  it("rejects an unknown split", async () => {
    await expect(
      Gsm8k.load({ split: "validation" as "train", path: `${DATA}/test.jsonl` }),
    ).rejects.toThrow(/split must be "train" or "test"/);
  });
});
