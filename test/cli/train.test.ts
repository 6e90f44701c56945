/**
 * `tinker-ts sft` and `tinker-ts rl` (and so examples/gsm8k-sft.ts and gsm8k-rl.ts) against a real
 * local server: the run files and the printed model reference, chaining sft -> sample -> eval,
 * and bad input as one line with exit code 1 or 2.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { readJsonLines } from "../../src/recipes/run-dir.js";
import { gsm8kReasoning, gsm8kSftConversation } from "../../src/recipes/supervised/gsm8k.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import { captureCli } from "./capture.js";
import { type CliServer, startCliServer } from "./local-server.js";

let ctx: CliServer;
let rows: string;
beforeAll(async () => {
  ctx = await startCliServer("cli-train");
  rows = join(ctx.dir, "train.jsonl");
  const lines = (await readFile(join(GSM8K_DIR, "train.jsonl"), "utf8")).split("\n").slice(0, 12);
  await writeFile(rows, `${lines.join("\n")}\n`);
});
afterAll(async () => {
  await ctx?.close();
});

describe("GSM8K SFT data", () => {
  it("turns a row into the env's prompt and a reply ending in \\boxed{answer}", () => {
    const solution = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72";
    expect(gsm8kReasoning(solution)).toBe("Natalia sold 48/2 = 24 clips in May.");
    const convo = gsm8kSftConversation({ question: "Q?", solution, answer: "72" });
    expect(convo).toHaveLength(4); // one-shot user + assistant, then the question and the reply
    expect(convo[2]).toEqual({
      role: "user",
      content: "Q? Write your answer in \\boxed{} format.",
    });
    expect(convo[3]!.content).toBe("Natalia sold 48/2 = 24 clips in May. \\boxed{72}");
    const short = gsm8kSftConversation(
      { question: "Q?", solution, answer: "72" },
      { answerOnly: true, fewshot: false },
    );
    expect(short).toEqual([
      { role: "user", content: "Q? Write your answer in \\boxed{} format." },
      { role: "assistant", content: "\\boxed{72}" },
    ]);
  });
});

describe("tinker-ts sft / rl", () => {
  it("sft trains, prints the model reference, and its output chains into sample and eval", async () => {
    const logDir = join(ctx.dir, "sft");
    const r = await captureCli(() =>
      runCli([
        "sft",
        "--data",
        rows,
        "--log-dir",
        logDir,
        "--batch-size",
        "4",
        "--test-size",
        "4",
        "--eval-every",
        "1",
        "--lr",
        "0.004",
        "--lora-rank",
        "8",
        "--no-progress",
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    const ref = r.stdout.trim();
    expect(ref).toMatch(/^tinker:\/\/.+\/sampler_weights\/final$/);
    expect(r.stderr).toMatch(/done after 2\/2 steps/);
    const metrics = (await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl")))
      .rows;
    expect(metrics).toHaveLength(2);
    expect(metrics[0]).toHaveProperty("test/nll");
    const ckpt = (await readJsonLines<Record<string, unknown>>(join(logDir, "checkpoints.jsonl")))
      .rows;
    expect(ckpt.at(-1)!.sampler_path).toBe(ref);

    const answers = join(ctx.dir, "answers.jsonl");
    const sampled = await captureCli(() =>
      runCli([
        "sample",
        rows,
        "--model",
        ref,
        "--out",
        answers,
        "--max-tokens",
        "4",
        "--limit",
        "2",
      ]),
    );
    expect(sampled.code, sampled.stderr).toBe(0);
    const graded = await captureCli(() =>
      runCli(["eval", answers, "--out", join(ctx.dir, "eval.json")]),
    );
    expect(graded.code, graded.stderr).toBe(0);
    expect(graded.stdout).toMatch(/on 2 questions/);
  }, 180_000);

  it("rl trains on local GSM8K files and evaluates the test set", async () => {
    const logDir = join(ctx.dir, "rl");
    const r = await captureCli(() =>
      runCli([
        "rl",
        "--train",
        rows,
        "--test",
        rows,
        "--test-batches",
        "1",
        "--groups-per-batch",
        "2",
        "--group-size",
        "2",
        "--max-tokens",
        "4",
        "--max-steps",
        "2",
        "--eval-every",
        "1",
        "--lr",
        "0.001",
        "--log-dir",
        logDir,
        "--no-progress",
      ]),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^tinker:\/\/.+\/sampler_weights\/final$/);
    const metrics = (await readJsonLines<Record<string, number>>(join(logDir, "metrics.jsonl")))
      .rows;
    expect(metrics).toHaveLength(2);
    expect(metrics[1]).toHaveProperty("test/env/all/correct");
  }, 180_000);

  it.each([
    [["sft"], 2, /--data is required/],
    [["sft", "--data", "x.jsonl", "--batch-size", "many"], 2, /--batch-size must be an integer/],
    [
      ["sft", "--data", "x.jsonl", "--if-exists", "ask"],
      2,
      /--if-exists must be fail, resume or overwrite/,
    ],
    [["rl", "--loss", "mse"], 2, /--loss must be one of importance_sampling, ppo, cispo, dro/],
    [["sft", "--data", "/nonexistent/rows.jsonl", "--log-dir", "/tmp/x"], 1, /rows\.jsonl/],
    [
      ["sft", "--data", "ROWS", "--model", "acme/unknown", "--renderer", "role_colon"],
      1,
      /not served/,
    ],
    [
      [
        "sft",
        "--data",
        "ROWS",
        "--load-checkpoint",
        "tinker://nope/weights/x",
        "--if-exists",
        "overwrite",
        "--batch-size",
        "4",
      ],
      1,
      /nope|not found|unknown/i,
    ],
  ])(
    "%j fails in one line with exit code %i",
    async (args, code, message) => {
      const argv = (args as string[]).map((a) => (a === "ROWS" ? rows : a));
      const withDir = argv.includes("--log-dir")
        ? argv
        : [...argv, "--log-dir", join(ctx.dir, "bad")];
      const r = await captureCli(() => runCli(withDir));
      expect(r.code).toBe(code);
      expect(r.stderr.trim().split("\n")[0]).toMatch(message);
    },
    60_000,
  );
});
