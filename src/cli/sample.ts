import cliProgress from "cli-progress";
import { ServiceClient } from "../client/service-client.js";
import { EXIT, intFlag, numberFlag, parseFlags, runCommand, UsageError } from "./args.js";
import type { InferenceHooks, InferenceOptions } from "./gsm8k/inference.js";
import type { Subcommand } from "./subcommand.js";

export const SAMPLE_HELP = `Usage: tinker-ts sample <questions.jsonl> --model <ref> --out <answers.jsonl> [options]

Answer GSM8K-style questions with a model: each question gets the GSM8K env's prompt (a one-shot
example, then the question and "Write your answer in \\boxed{} format."), one sample, and a row in
the output with the sampled text, the parsed final answer, the stop reason and token counts.
Resumable: questions already answered in --out are skipped; every row is fsynced as it is written
and a torn last row (a killed run) is dropped on restart.

Arguments:
  <questions.jsonl>     {"question": ..., "answer": ...} rows (GSM8K's shape; "answer" optional,
                        its "#### x" line is the reference that eval grades against)

Options:
  --model <ref>         A base model name (e.g. tiny-bytes, Qwen/Qwen3-8B) or a sampler checkpoint
                        path tinker://<run>/sampler_weights/<name>   (required)
  --out <file>          The answers JSONL file (required); appended to when resuming
  --renderer <name>     Chat format (default: the model's recommended renderer)
  --max-tokens <n>      Tokens per answer (default 512)
  --temperature <t>     Sampling temperature; 0 is greedy (default 0)
  --concurrency <n>     Sample requests in flight (default 8)
  --limit <n>           Only the first n questions
  --seed <n>            Sampling seed (question i uses seed + i)
  -h, --help            Show this help

Environment:
  TINKER_API_KEY        Use Tinker's cloud service; without it (and without TINKER_BASE_URL) the
                        embedded local CPU engine runs in this process (presets tiny-bytes, tiny-qwen3)
  TINKER_BASE_URL       A Tinker-compatible server, e.g. one started with tinker-ts serve
  TINKER_TS_CACHE_DIR   Where the local engine keeps its data (default ~/.cache/tinker-ts)

Exit codes: 0 all answered, 1 failure (missing or malformed file, unknown model or checkpoint,
server error; rows written so far stay and a rerun resumes), 2 usage error.`;

export const SAMPLE_FLAGS = {
  model: { type: "string" },
  out: { type: "string" },
  renderer: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  concurrency: { type: "string" },
  limit: { type: "string" },
  seed: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** The sample options from a command line, or null for `--help` (printed). */
export function parseSampleArgs(argv: readonly string[]): InferenceOptions | null {
  const { values, positionals } = parseFlags(argv, SAMPLE_FLAGS, {
    min: 1,
    max: 1,
    name: "<questions.jsonl>",
  });
  if (values.help) {
    process.stdout.write(`${SAMPLE_HELP}\n`);
    return null;
  }
  if (!values.model)
    throw new UsageError("--model is required (a base model name or a tinker:// sampler path)");
  if (!values.out) throw new UsageError("--out is required (the answers JSONL file to write)");
  const limit =
    values.limit === undefined ? undefined : intFlag("limit", values.limit, 0, { min: 1 });
  const seed = values.seed === undefined ? undefined : intFlag("seed", values.seed, 0);
  return {
    model: values.model,
    questions: positionals[0]!,
    out: values.out,
    ...(values.renderer === undefined ? {} : { renderer: values.renderer }),
    maxTokens: intFlag("max-tokens", values["max-tokens"], 512, { min: 1 }),
    temperature: numberFlag("temperature", values.temperature, 0),
    concurrency: intFlag("concurrency", values.concurrency, 8, { min: 1, max: 1024 }),
    ...(limit === undefined ? {} : { limit }),
    ...(seed === undefined ? {} : { seed }),
  };
}

/** A progress bar on a TTY (cli-progress), else a plain line at every tenth of the way. */
export function progressHooks(stream: NodeJS.WriteStream = process.stderr): InferenceHooks & {
  stop(): void;
} {
  let bar: cliProgress.SingleBar | undefined;
  let lastTenth = -1;
  let correctish = 0;
  return {
    start({ total, done, model, renderer }) {
      stream.write(`sample: ${model} (renderer ${renderer}), ${done}/${total} already answered\n`);
      if (stream.isTTY && done < total) {
        bar = new cliProgress.SingleBar(
          {
            format: "sample [{bar}] {value}/{total} eta {eta_formatted} | boxed {boxed}",
            stream,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done, { boxed: 0 });
      }
    },
    answered(row, done, total) {
      if (row.extracted !== null) correctish++;
      if (bar) {
        bar.update(done, { boxed: correctish });
        return;
      }
      const tenth = Math.floor((10 * done) / total);
      if (tenth !== lastTenth || done === total) {
        lastTenth = tenth;
        stream.write(`sample: ${done}/${total}\n`);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** Run `tinker-ts sample` with parsed options (also the body of examples/gsm8k-inference.ts). */
export async function runSample(options: InferenceOptions): Promise<void> {
  const { runInference } = await import("./gsm8k/inference.js");
  const service = new ServiceClient();
  const progress = progressHooks();
  try {
    const r = await runInference(service, options, progress);
    progress.stop();
    const torn = r.cutTornTail ? " (a torn last row of a killed run was dropped first)" : "";
    process.stdout.write(
      `answered ${r.answered} questions, skipped ${r.skipped} already answered${torn}: ${options.out}\n`,
    );
  } finally {
    progress.stop();
    await service.close();
  }
}

export const sampleCommand: Subcommand = {
  run(argv) {
    return runCommand("sample", async () => {
      const options = parseSampleArgs(argv);
      if (options !== null) await runSample(options);
      return EXIT.ok;
    });
  },
};
