/**
 * Shared pieces of the recipe tests: a real local server on loopback, a GSM8K slice from the
 * repository's fixture, and the small recipes the resume tests run (in-process and in a child).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lowercaseRecipe } from "../../examples/custom-env-rl.js";
import type { ServiceClient } from "../../src/client/service-client.js";
import { RLRecipe } from "../../src/recipes/rl/recipe.js";
import { mappedRows } from "../../src/recipes/supervised/dataset.js";
import {
  SupervisedRecipe,
  type SupervisedRecipeConfig,
} from "../../src/recipes/supervised/recipe.js";
import { GSM8K_DIR } from "../fixture-paths.js";
import { startRealServer } from "../server/real-engine.js";

export interface Gsm8kRow {
  question: string;
  answer: string;
}

/** The `n` shortest GSM8K train rows (short sequences keep the tests fast), in a fixed order. */
export function shortGsm8kRows(n: number): Gsm8kRow[] {
  return readFileSync(join(GSM8K_DIR, "train.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Gsm8kRow)
    .map((r, i) => ({ r, i, len: r.question.length + r.answer.length }))
    .sort((a, b) => a.len - b.len || a.i - b.i)
    .slice(0, n)
    .map(({ r }) => r);
}

/** A real local server (real engine, tiny-bytes) and a client for it. */
export const startRecipeServer = startRealServer;

/** SFT of tiny-bytes on GSM8K question -> worked answer. */
export function gsm8kSft(
  base: Pick<SupervisedRecipeConfig, "logDir"> & Partial<SupervisedRecipeConfig>,
  o: {
    rows: number;
    testSize: number;
    batchSize: number;
    epochs: number;
    evalEvery: number;
    submitAhead?: number;
  },
): SupervisedRecipe {
  return new SupervisedRecipe({
    model: "tiny-bytes",
    renderer: "qwen3_instruct",
    loraRank: 64,
    learningRate: 4e-3,
    lrSchedule: "constant",
    saveEvery: 0,
    progress: false,
    ...base,
    epochs: o.epochs,
    evalEvery: o.evalEvery,
    ...(o.submitAhead !== undefined ? { submitAhead: o.submitAhead } : {}),
    dataset: mappedRows(
      "gsm8k-shortest",
      shortGsm8kRows(o.rows),
      (r) => [
        { role: "user", content: r.question },
        { role: "assistant", content: r.answer },
      ],
      { batchSize: o.batchSize, testSize: o.testSize },
    ),
  });
}

/** The recipes of the resume tests, identical in the uninterrupted and the killed runs. */
export type ResumeKind = "sft" | "rl" | "rl-async";

export function resumeRecipe(kind: ResumeKind, service: ServiceClient, logDir: string) {
  const base = { service, logDir, ifExists: "resume" as const, progress: false, saveEvery: 2 };
  if (kind === "sft") {
    return gsm8kSft(
      { ...base, lrSchedule: "linear" },
      { rows: 12, testSize: 4, batchSize: 2, epochs: 2, evalEvery: 3 },
    );
  }
  const recipe = lowercaseRecipe({ logDir, steps: 7, seed: 3 });
  return new RLRecipe({
    ...recipe.config,
    ...base,
    ...(kind === "rl-async" ? { maxStepsOffPolicy: 2 } : {}),
  });
}
