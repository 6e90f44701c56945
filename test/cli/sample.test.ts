/**
 * `tinker-ts sample` on the real local server (tiny-bytes): rows of the in-repo GSM8K split get
 * the GSM8K env's prompt and a parsed answer; the output resumes (answered rows skipped, a torn
 * tail dropped); a sampler checkpoint path works; bad input gives one line, exit 1 or 2, and no
 * output file. Few rows and small maxTokens keep it fast.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAnswerRow } from "../../src/cli/gsm8k/rows.js";
import { runCli } from "../../src/cli/main.js";
import { captureCli } from "./capture.js";
import { type CliServer, gsm8kSlice, startCliServer } from "./local-server.js";

let ctx: CliServer;
let questions: string;
beforeAll(async () => {
  ctx = await startCliServer("cli-sample");
  questions = await gsm8kSlice(ctx.dir, 3);
});
afterAll(async () => {
  await ctx.close();
});

async function readRows(path: string) {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trim()
    .split("\n")
    .map((l) => parseAnswerRow(JSON.parse(l)));
}

const sample = (...args: string[]) =>
  captureCli(() =>
    runCli(["sample", questions, "--model", "tiny-bytes", "--max-tokens", "6", ...args]),
  );

describe("tinker-ts sample", () => {
  it("answers every question with the GSM8K prompt and logs the parsed answer", async () => {
    const out = join(ctx.dir, "answers.jsonl");
    const r = await sample("--out", out, "--concurrency", "2");
    expect(r.stderr).not.toMatch(/tinker-ts sample:/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/answered 3 questions, skipped 0 already answered/);
    const rows = await readRows(out);
    expect(rows.map((x) => x.index).sort()).toEqual([0, 1, 2]);
    const first = rows.find((x) => x.index === 0)!;
    expect(first).toMatchObject({
      reference: "18",
      model: "tiny-bytes",
      renderer: "qwen3_instruct",
    });
    expect(first.question).toMatch(/^Janet/);
    expect(first.completion_tokens).toBeLessThanOrEqual(6);
    // The one-shot prefix and the boxed suffix are in the prompt: far longer than the question.
    expect(first.prompt_tokens).toBeGreaterThan(first.question.length + 200);
    expect(["stop", "length"]).toContain(first.stop_reason);

    // The same command again answers nothing new.
    const again = await sample("--out", out);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/answered 0 questions, skipped 3/);
    expect(await readRows(out)).toHaveLength(3);

    // And the output is eval's input.
    const graded = await captureCli(() =>
      runCli(["eval", out, "--out", join(ctx.dir, "eval.json")]),
    );
    expect(graded.code).toBe(0);
    expect(graded.stdout).toMatch(/^accuracy .* on 3 questions/m);
  });

  it("resumes after a kill: keeps complete rows, drops a torn last row, answers the rest", async () => {
    const out = join(ctx.dir, "resumed.jsonl");
    expect((await sample("--out", out, "--limit", "1")).code).toBe(0);
    const [kept] = await readRows(out);
    await appendFile(out, `{"index":1,"question":"A robe`);
    const r = await sample("--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/answered 2 questions, skipped 1 already answered \(a torn last row/);
    const rows = await readRows(out);
    expect(rows.map((x) => x.index).sort()).toEqual([0, 1, 2]);
    expect(rows[0]).toEqual(kept);
  });

  it("a failure mid-run keeps the complete rows and says how to resume", async () => {
    const mixed = join(ctx.dir, "mixed.jsonl");
    const rows = [
      { question: "What is 1 + 1?", answer: "#### 2" },
      { question: "x ".repeat(5000), answer: "#### 2" }, // longer than tiny-bytes' context
    ];
    await writeFile(mixed, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    const out = join(ctx.dir, "mixed-answers.jsonl");
    const r = await captureCli(() =>
      runCli([
        "sample",
        mixed,
        "--model",
        "tiny-bytes",
        "--out",
        out,
        "--max-tokens",
        "4",
        "--concurrency",
        "1",
      ]),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /more than the model's context length .*; 1 of 2 questions are answered in .*mixed-answers\.jsonl: fix the cause and run the same command again to resume/,
    );
    // Progress lines come first; the error is the one line of its own.
    expect(r.stderr.split("\n").filter((l) => l.startsWith("tinker-ts sample:"))).toHaveLength(1);
    expect((await readRows(out)).map((x) => x.index)).toEqual([0]);
  });

  it("a killed run leaves only complete rows, and the rerun finishes the rest", async () => {
    const many = await gsm8kSlice(ctx.dir, 8, "eight.jsonl");
    const out = join(ctx.dir, "killed.jsonl");
    const main = new URL("../../src/cli/main.ts", import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        main,
        "sample",
        many,
        "--model",
        "tiny-bytes",
        "--out",
        out,
        "--max-tokens",
        "48",
        "--concurrency",
        "2",
      ],
      { env: ctx.env, stdio: "ignore" },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Kill it as soon as the first row is on disk (or let it finish if it is faster than us).
    for (let ready = false; !ready; ) {
      await new Promise((r) => setTimeout(r, 50));
      const text = existsSync(out) ? await readFile(out, "utf8") : "";
      ready = text.includes("\n") || child.exitCode !== null;
    }
    child.kill("SIGKILL");
    await exited;
    const text = await readFile(out, "utf8");
    const complete = text
      .slice(0, text.lastIndexOf("\n") + 1)
      .trim()
      .split("\n");
    for (const line of complete) parseAnswerRow(JSON.parse(line));
    const r = await captureCli(() =>
      runCli([
        "sample",
        many,
        "--model",
        "tiny-bytes",
        "--out",
        out,
        "--max-tokens",
        "48",
        "--concurrency",
        "2",
      ]),
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`skipped ${complete.length} already answered`));
    expect((await readRows(out)).map((x) => x.index).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("samples from a tinker:// sampler checkpoint", async () => {
    const { samplerPath } = await ctx.checkpoints();
    const out = join(ctx.dir, "from-checkpoint.jsonl");
    const r = await captureCli(() =>
      runCli([
        "sample",
        questions,
        "--model",
        samplerPath,
        "--out",
        out,
        "--max-tokens",
        "4",
        "--limit",
        "2",
      ]),
    );
    expect(r.code).toBe(0);
    const rows = await readRows(out);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.model).toBe(samplerPath);
    expect(rows[0]!.renderer).toBe("qwen3_instruct");
  });

  it("bad input: one line, exit 1 or 2, no output file", async () => {
    const out = join(ctx.dir, "never.jsonl");
    const oneLine = (s: string) => expect(s.trim().split("\n")).toHaveLength(1);
    const cases: { args: string[]; code: number; message: RegExp }[] = [
      {
        args: ["sample", join(ctx.dir, "missing.jsonl"), "--model", "tiny-bytes", "--out", out],
        code: 1,
        message: /cannot read JSONL file .*missing\.jsonl: ENOENT/,
      },
      {
        args: ["sample", questions, "--model", "no-such-model", "--out", out],
        code: 1,
        message: /unknown base_model "no-such-model"; this server serves: tiny-bytes/,
      },
      {
        args: ["sample", questions, "--model", "tinker://nope/sampler_weights/x", "--out", out],
        code: 1,
        message: /checkpoint tinker:\/\/nope\/sampler_weights\/x does not exist/,
      },
      {
        args: ["sample", questions, "--model", "tiny-bytes", "--out", out, "--renderer", "nope"],
        code: 1,
        message: /unknown renderer "nope"; known renderers: /,
      },
      {
        args: ["sample", questions, "--model", "tiny-bytes", "--out", out, "--max-tokens", "ten"],
        code: 2,
        message: /--max-tokens must be an integer >= 1, got "ten" \(see tinker-ts sample --help\)/,
      },
      {
        args: ["sample", questions, "--model", "tiny-bytes", "--out", out, "--temperature=-1"],
        code: 2,
        message: /--temperature must be a number >= 0/,
      },
      { args: ["sample", questions, "--out", out], code: 2, message: /--model is required/ },
      {
        args: ["sample", questions, "--model", "tiny-bytes"],
        code: 2,
        message: /--out is required/,
      },
      {
        args: ["sample", "--model", "tiny-bytes", "--out", out],
        code: 2,
        message: /missing <questions.jsonl>/,
      },
      {
        args: ["sample", questions, "--model", "tiny-bytes", "--out", out, "--nope"],
        code: 2,
        message: /Unknown option '--nope'/,
      },
    ];
    const malformed = join(ctx.dir, "malformed.jsonl");
    await writeFile(malformed, `{"question": "ok?", "answer": "#### 1"}\n{"question": 7}\n`);
    cases.push({
      args: ["sample", malformed, "--model", "tiny-bytes", "--out", out],
      code: 1,
      message: /malformed\.jsonl:2: field "question" must be a string, got number 7/,
    });
    const empty = join(ctx.dir, "empty.jsonl");
    await writeFile(empty, "\n");
    cases.push({
      args: ["sample", empty, "--model", "tiny-bytes", "--out", out],
      code: 1,
      message: /empty\.jsonl has no questions/,
    });
    for (const c of cases) {
      const r = await captureCli(() => runCli(c.args));
      expect(r.code, c.args.join(" ")).toBe(c.code);
      expect(r.stderr, c.args.join(" ")).toMatch(c.message);
      oneLine(r.stderr);
      expect(existsSync(out), c.args.join(" ")).toBe(false);
    }
  });

  it("refuses to resume another model's output", async () => {
    const out = join(ctx.dir, "other-model.jsonl");
    expect((await sample("--out", out, "--limit", "1")).code).toBe(0);
    const { samplerPath } = await ctx.checkpoints();
    const r = await captureCli(() =>
      runCli(["sample", questions, "--model", samplerPath, "--out", out, "--max-tokens", "4"]),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /holds answers of model "tiny-bytes", not "tinker:\/\/.*"; pass another --out or delete it/,
    );
    expect(await readRows(out)).toHaveLength(1);
  });
});
