/**
 * The main job (`npm start`): the whole GSM8K pipeline on the embedded local engine, with no
 * account and no network, in a few minutes on a laptop CPU:
 *
 *   1. SFT of the tiny-bytes preset on GSM8K train rows shipped in the repository
 *      (test/fixtures/gsm8k, MIT licence) -> a fine-tuned model reference;
 *   2. inference on held-out GSM8K test questions, with the base model and the fine-tuned one;
 *   3. evaluation of both (accuracy with a 95% interval, and how many answers were parseable);
 *   4. the HTML report of the SFT run.
 *
 * Each step is the `tinker-ts` command a user would type (printed as it runs). tiny-bytes is a
 * byte-level model with random weights: it cannot learn arithmetic in minutes, so on the local
 * presets the SFT targets are the final answers alone (`--answer-only`, e.g. `\boxed{72}`): the
 * model learns the answer format, so the share of parseable answers rises while accuracy stays at
 * chance. With a real model the targets are the worked solutions.
 * The same pipeline with a real model on Tinker's cloud:
 *   TINKER_API_KEY=tml-... PIPELINE_MODEL=Qwen/Qwen3-4B-Instruct-2507 npm start
 *
 * Settings (environment): PIPELINE_DIR (default runs/gsm8k-pipeline), PIPELINE_MODEL,
 * PIPELINE_ROWS (train rows, default 400), PIPELINE_QUESTIONS (held-out questions, default 24),
 * PIPELINE_MAX_TOKENS (per answer, default 200).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runCli } from "../src/cli/main.js";
import { GSM8K_DIR } from "../test/fixture-paths.js";

const dir = process.env.PIPELINE_DIR ?? "runs/gsm8k-pipeline";
const model = process.env.PIPELINE_MODEL ?? "tiny-bytes";
const rows = process.env.PIPELINE_ROWS ?? "400";
const questions = process.env.PIPELINE_QUESTIONS ?? "24";
const maxTokens = process.env.PIPELINE_MAX_TOKENS ?? "200";
const local = model === "tiny-bytes" || model === "tiny-qwen3";

/** Run one `tinker-ts` command, printing it first; stop the pipeline when it fails. */
async function tinker(...args: string[]): Promise<void> {
  process.stderr.write(`\n$ tinker-ts ${args.join(" ")}\n`);
  const code = await runCli(args);
  if (code !== 0) {
    process.stderr.write(`pipeline: "tinker-ts ${args[0]}" failed (exit ${code})\n`);
    process.exit(code);
  }
}

/** Capture what a command prints on stdout (the model reference of `sft`). */
async function tinkerOutput(...args: string[]): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    await tinker(...args);
  } finally {
    process.stdout.write = write;
  }
  return out.trim().split("\n").at(-1) ?? "";
}

const train = join(GSM8K_DIR, "train.jsonl");
const test = join(GSM8K_DIR, "test.jsonl");
const sftDir = join(dir, "sft");

// 1. Fine-tune. The recipe holds out 16 rows for test/nll and checkpoints as it goes.
const tuned = await tinkerOutput(
  "sft",
  ...["--data", train, "--limit", rows, "--model", model, "--log-dir", sftDir],
  ...(local ? ["--lr", "0.004", "--lora-rank", "64", "--answer-only"] : []),
  ...["--batch-size", "8", "--test-size", "16", "--eval-every", "10", "--if-exists", "overwrite"],
);
process.stderr.write(`fine-tuned model: ${tuned}\n`);

// 2. and 3. Answer held-out questions with the base and the tuned model, and grade both.
const results: Record<string, { accuracy: number; unparseable: number; graded: number }> = {};
for (const [name, ref] of [
  ["base", model],
  ["tuned", tuned],
] as const) {
  const answers = join(dir, `answers-${name}.jsonl`);
  await tinker(
    "sample",
    test,
    "--model",
    ref,
    "--out",
    answers,
    "--limit",
    questions,
    "--max-tokens",
    maxTokens,
  );
  await tinker("eval", answers, "--out", join(dir, `eval-${name}.json`));
  results[name] = JSON.parse(await readFile(join(dir, `eval-${name}.json`), "utf8"));
}

// 4. The report of the training run: curves, config, checkpoints.
await tinker("report", sftDir, "--out", join(dir, "report.html"));

const metrics = (await readFile(join(sftDir, "metrics.jsonl"), "utf8"))
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l) as Record<string, number>);
const nll = metrics.map((m) => m.train_mean_nll!);
const testNll = metrics.filter((m) => m["test/nll"] !== undefined).map((m) => m["test/nll"]!);
const share = (r: { unparseable: number; graded: number }) =>
  `${(100 * (1 - r.unparseable / r.graded)).toFixed(0)}%`;
process.stdout.write(
  [
    "",
    `train NLL ${nll[0]!.toFixed(2)} -> ${nll.at(-1)!.toFixed(2)} over ${nll.length} steps`,
    `held-out NLL ${testNll.map((v) => v.toFixed(2)).join(" -> ")}`,
    `answers with a parseable \\boxed{}: base ${share(results.base!)} -> tuned ${share(results.tuned!)}`,
    `accuracy: base ${(100 * results.base!.accuracy).toFixed(1)}% -> tuned ${(100 * results.tuned!.accuracy).toFixed(1)}%`,
    `report: ${join(dir, "report.html")}`,
    "",
  ].join("\n"),
);
