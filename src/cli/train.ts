/**
 * `tinker-ts sft` and `tinker-ts rl`: the GSM8K training programs on `SupervisedRecipe` and
 * `RLRecipe` (also the bodies of examples/gsm8k-sft.ts and examples/gsm8k-rl.ts).
 */
import { ServiceClient } from "../client/service-client.js";
import type { LossFnType } from "../client/types/params.js";
import { lenientAnswerGrader } from "../envs/graders.js";
import type { RecipeBaseConfig, RecipeResult } from "../recipes/common.js";
import { gsm8kRL } from "../recipes/rl/datasets.js";
import { RLRecipe } from "../recipes/rl/recipe.js";
import type { IfExists } from "../recipes/run-dir.js";
import type { LrSchedule } from "../recipes/schedule.js";
import { gsm8kSft } from "../recipes/supervised/gsm8k.js";
import { SupervisedRecipe } from "../recipes/supervised/recipe.js";
import {
  EXIT,
  type FlagValues,
  intFlag,
  numberFlag,
  parseFlags,
  runCommand,
  UsageError,
} from "./args.js";
import type { Subcommand } from "./subcommand.js";

const COMMON_FLAGS = {
  model: { type: "string" },
  "log-dir": { type: "string" },
  renderer: { type: "string" },
  "lora-rank": { type: "string" },
  lr: { type: "string" },
  "max-steps": { type: "string" },
  "save-every": { type: "string" },
  "eval-every": { type: "string" },
  seed: { type: "string" },
  "if-exists": { type: "string" },
  "load-checkpoint": { type: "string" },
  "no-progress": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const COMMON_HELP = `  --model <name>         Base model (default tiny-bytes, a local preset; e.g. Qwen/Qwen3-8B on Tinker)
  --log-dir <dir>        Run directory: config.json, metrics.jsonl, checkpoints.jsonl (default runs/<cmd>)
  --renderer <name>      Chat format (default: the model's recommended renderer)
  --lora-rank <n>        LoRA rank (default 32)
  --lr <x>               Learning rate (default: the model's, see getLr)
  --max-steps <n>        Stop after n steps
  --save-every <n>       Resumable checkpoint every n steps, 0 = only the final one (default 20)
  --eval-every <n>       Evaluate every n steps, 0 = never
  --seed <n>             Seed of data order, LoRA init and sampling (default 0)
  --if-exists <what>     When the log dir holds a run: fail (default), resume or overwrite
  --load-checkpoint <p>  Start from these weights (tinker://<run>/weights/<name>), fresh optimizer
  --no-progress          No progress bar (one line per step is printed when not on a terminal)
  -h, --help             Show this help

Environment:
  TINKER_API_KEY         Train on Tinker's cloud; without it (and without TINKER_BASE_URL) the
                         embedded local CPU engine runs in this process
  TINKER_BASE_URL        A Tinker-compatible server, e.g. one started with tinker-ts serve

Output: the final model's sampler path (tinker://.../sampler_weights/final) on stdout, and in
<log-dir>/checkpoints.jsonl. Rerun with --if-exists resume to continue a stopped run exactly.
Exit codes: 0 done, 1 failure (one line naming the fix), 2 usage error.`;

export const SFT_HELP = `Usage: tinker-ts sft --data <train.jsonl> [options]

Supervised fine-tuning on GSM8K-style {"question", "answer"} rows: each becomes the GSM8K prompt
(one-shot example, question, "Write your answer in \\boxed{} format.") and the worked solution
ending in \\boxed{<answer>} as the trained reply. Held-out rows give test/nll and test/bpb.

Options:
  --data <file>          Training rows, JSONL (required)
  --batch-size <n>       Examples per step (default 32)
  --epochs <n>           Passes over the data (default 1)
  --test-size <n>        Rows held out for test/nll (default 0)
  --limit <n>            Use only the first n rows of the file
  --lr-schedule <s>      linear (default), cosine or constant
  --max-length <n>       Truncate examples to n tokens
  --answer-only          Train on the final \\boxed{answer} alone, not the worked solution
  --submit-ahead <n>     Steps in flight before the oldest result is awaited (default 1)
${COMMON_HELP}`;

export const RL_HELP = `Usage: tinker-ts rl [options]

Reinforcement learning on GSM8K: groups of samples per problem, rewarded by the grader
(1 for a correct \\boxed{} answer, minus 0.1 when badly formed), group-centred advantages.

Options:
  --train <file>         GSM8K train rows, JSONL (default: openai/gsm8k from the Hugging Face hub)
  --test <file>          GSM8K test rows for test/env/all/correct (default: the hub's test split)
  --no-test              No test-set evaluation
  --test-batches <n>     Evaluate on the first n test batches only
  --grader <g>           boxed (default: the last \\boxed{}) or lenient (also a final number)
  --groups-per-batch <n> Problems per step (default 32)
  --group-size <n>       Samples per problem (default 8)
  --max-tokens <n>       Tokens per answer (default 256)
  --temperature <t>      Sampling temperature (default 1)
  --loss <name>          importance_sampling (default), ppo, cispo or dro
  --max-steps-off-policy <d>  Sample step n with the weights of step n-d (overlaps sampling and training)
${COMMON_HELP}`;

const IF_EXISTS: readonly IfExists[] = ["fail", "resume", "overwrite"];

function baseConfig(
  values: FlagValues<typeof COMMON_FLAGS>,
  command: string,
  service: ServiceClient,
): RecipeBaseConfig {
  const ifExists = values["if-exists"] ?? "fail";
  if (!IF_EXISTS.includes(ifExists as IfExists)) {
    throw new UsageError(`--if-exists must be fail, resume or overwrite, got "${ifExists}"`);
  }
  const opt = <T>(raw: string | undefined, read: (r: string) => T) =>
    raw === undefined ? undefined : read(raw);
  const lr = opt(values.lr, (r) => numberFlag("lr", r, 0, Number.MIN_VALUE));
  const rank = opt(values["lora-rank"], (r) => intFlag("lora-rank", r, 0, { min: 1 }));
  const maxSteps = opt(values["max-steps"], (r) => intFlag("max-steps", r, 0, { min: 1 }));
  const saveEvery = opt(values["save-every"], (r) => intFlag("save-every", r, 0));
  const seed = opt(values.seed, (r) => intFlag("seed", r, 0));
  return {
    model: values.model ?? "tiny-bytes",
    logDir: values["log-dir"] ?? `runs/${command}`,
    service,
    ifExists: ifExists as IfExists,
    progress: values["no-progress"] !== true,
    ...(values.renderer !== undefined ? { renderer: values.renderer } : {}),
    ...(lr !== undefined ? { learningRate: lr } : {}),
    ...(rank !== undefined ? { loraRank: rank } : {}),
    ...(maxSteps !== undefined ? { maxSteps } : {}),
    ...(saveEvery !== undefined ? { saveEvery } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(values["load-checkpoint"] !== undefined
      ? { loadCheckpointPath: values["load-checkpoint"] }
      : {}),
  };
}

/** Stop on Ctrl-C with a final checkpoint (a second Ctrl-C exits at once). */
function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onInt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("stopping after the steps in flight (Ctrl-C again to quit now)\n");
    controller.abort();
  };
  process.on("SIGINT", onInt);
  return { signal: controller.signal, dispose: () => process.off("SIGINT", onInt) };
}

function report(result: RecipeResult): number {
  const state = result.aborted ? "stopped" : "done";
  process.stderr.write(
    `${state} after ${result.stepsDone}/${result.totalSteps} steps; run files in ${result.logDir}\n`,
  );
  if (result.samplerPath !== undefined) process.stdout.write(`${result.samplerPath}\n`);
  return EXIT.ok;
}

const SFT_FLAGS = {
  ...COMMON_FLAGS,
  data: { type: "string" },
  "batch-size": { type: "string" },
  epochs: { type: "string" },
  "test-size": { type: "string" },
  limit: { type: "string" },
  "lr-schedule": { type: "string" },
  "max-length": { type: "string" },
  "submit-ahead": { type: "string" },
  "answer-only": { type: "boolean" },
} as const;

/** Run `tinker-ts sft` with `argv`; resolves to the exit code's value for success. */
export async function runSft(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags(argv, SFT_FLAGS, { min: 0, max: 0 });
  if (values.help) {
    process.stdout.write(`${SFT_HELP}\n`);
    return EXIT.ok;
  }
  if (values.data === undefined) throw new UsageError("--data is required (a JSONL file of rows)");
  const schedule = values["lr-schedule"] ?? "linear";
  if (!["linear", "cosine", "constant"].includes(schedule)) {
    throw new UsageError(`--lr-schedule must be linear, cosine or constant, got "${schedule}"`);
  }
  const limit =
    values.limit === undefined ? undefined : intFlag("limit", values.limit, 0, { min: 1 });
  const maxLength =
    values["max-length"] === undefined
      ? undefined
      : intFlag("max-length", values["max-length"], 0, { min: 2 });
  const service = new ServiceClient();
  const stop = interruptSignal();
  try {
    const recipe = new SupervisedRecipe({
      ...baseConfig(values, "sft", service),
      signal: stop.signal,
      lrSchedule: schedule as LrSchedule,
      epochs: intFlag("epochs", values.epochs, 1, { min: 1 }),
      submitAhead: intFlag("submit-ahead", values["submit-ahead"], 1),
      evalEvery: intFlag("eval-every", values["eval-every"], 10),
      dataset: gsm8kSft({
        path: values.data,
        batchSize: intFlag("batch-size", values["batch-size"], 32, { min: 1 }),
        testSize: intFlag("test-size", values["test-size"], 0),
        ...(limit !== undefined ? { limit } : {}),
        ...(maxLength !== undefined ? { maxLength } : {}),
        ...(values["answer-only"] === true ? { answerOnly: true } : {}),
      }),
    });
    return report(await recipe.run());
  } finally {
    stop.dispose();
    await service.close();
  }
}

const RL_FLAGS = {
  ...COMMON_FLAGS,
  train: { type: "string" },
  test: { type: "string" },
  "no-test": { type: "boolean" },
  "test-batches": { type: "string" },
  grader: { type: "string" },
  "groups-per-batch": { type: "string" },
  "group-size": { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  loss: { type: "string" },
  "max-steps-off-policy": { type: "string" },
} as const;

const RL_LOSSES: readonly LossFnType[] = ["importance_sampling", "ppo", "cispo", "dro"];

/** Run `tinker-ts rl` with `argv`. */
export async function runRl(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags(argv, RL_FLAGS, { min: 0, max: 0 });
  if (values.help) {
    process.stdout.write(`${RL_HELP}\n`);
    return EXIT.ok;
  }
  const grader = values.grader ?? "boxed";
  if (grader !== "boxed" && grader !== "lenient") {
    throw new UsageError(`--grader must be boxed or lenient, got "${grader}"`);
  }
  const loss = values.loss ?? "importance_sampling";
  if (!RL_LOSSES.includes(loss as LossFnType)) {
    throw new UsageError(`--loss must be one of ${RL_LOSSES.join(", ")}, got "${loss}"`);
  }
  const testBatches =
    values["test-batches"] === undefined
      ? undefined
      : intFlag("test-batches", values["test-batches"], 0, { min: 1 });
  const offPolicy =
    values["max-steps-off-policy"] === undefined
      ? undefined
      : intFlag("max-steps-off-policy", values["max-steps-off-policy"], 0, { min: 1 });
  const paths = {
    ...(values.train !== undefined ? { train: values.train } : {}),
    ...(values.test !== undefined ? { test: values.test } : {}),
  };
  const service = new ServiceClient();
  const stop = interruptSignal();
  try {
    const recipe = new RLRecipe({
      ...baseConfig(values, "rl", service),
      signal: stop.signal,
      maxTokens: intFlag("max-tokens", values["max-tokens"], 256, { min: 1 }),
      temperature: numberFlag("temperature", values.temperature, 1, Number.MIN_VALUE),
      loss: loss as Exclude<LossFnType, "cross_entropy">,
      evalEvery: intFlag("eval-every", values["eval-every"], 20),
      ...(offPolicy !== undefined ? { maxStepsOffPolicy: offPolicy } : {}),
      dataset: gsm8kRL({
        groupsPerBatch: intFlag("groups-per-batch", values["groups-per-batch"], 32, { min: 1 }),
        groupSize: intFlag("group-size", values["group-size"], 8, { min: 1 }),
        ...(Object.keys(paths).length > 0 ? { paths } : {}),
        ...(values["no-test"] === true ? { noTest: true } : {}),
        ...(testBatches !== undefined ? { testBatches } : {}),
        ...(grader === "lenient" ? { grader: lenientAnswerGrader } : {}),
      }),
    });
    return report(await recipe.run());
  } finally {
    stop.dispose();
    await service.close();
  }
}

export const sftCommand: Subcommand = { run: (argv) => runCommand("sft", () => runSft(argv)) };
export const rlCommand: Subcommand = { run: (argv) => runCommand("rl", () => runRl(argv)) };
