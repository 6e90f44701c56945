import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TINKER_TS_VERSION } from "../client/core/version.js";
import type { SubcommandEntry } from "./subcommand.js";

/** Every subcommand of `tinker-ts`; add new ones here. */
const COMMANDS: readonly SubcommandEntry[] = [
  {
    name: "serve",
    summary: "Run a local Tinker-compatible server on the CPU engine",
    load: async () => (await import("./serve.js")).serveCommand,
  },
  {
    name: "sft",
    summary: "Fine-tune on GSM8K-style question/answer rows (SupervisedRecipe)",
    load: async () => (await import("./train.js")).sftCommand,
  },
  {
    name: "rl",
    summary: "Reinforcement learning on GSM8K with a grader (RLRecipe)",
    load: async () => (await import("./train.js")).rlCommand,
  },
  {
    name: "sample",
    summary: "Answer GSM8K-style questions with a model (resumable JSONL output)",
    load: async () => (await import("./sample.js")).sampleCommand,
  },
  {
    name: "eval",
    summary: "Grade GSM8K answers (the output of sample): accuracy with a 95% interval",
    load: async () => (await import("./eval.js")).evalCommand,
  },
  {
    name: "report",
    summary: "Write a self-contained HTML report of a training run's log dir",
    load: async () => (await import("./report.js")).reportCommand,
  },
  {
    name: "models",
    summary: "List the models the server can train and sample",
    load: async () => (await import("./rest.js")).modelsCommand,
  },
  {
    name: "checkpoints",
    summary: "List, download, delete or publish checkpoints (list|download|delete|publish)",
    load: async () => (await import("./rest.js")).checkpointsCommand,
  },
  {
    name: "runs",
    summary: "List your training runs (runs list)",
    load: async () => (await import("./rest.js")).runsCommand,
  },
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    `tinker-ts ${TINKER_TS_VERSION}: the Tinker fine-tuning API in TypeScript, with a local CPU engine`,
    "",
    "Usage: tinker-ts <command> [options]",
    "",
    "Commands:",
    ...lines,
    "",
    "Options:",
    "  -h, --help     Show this help (or `tinker-ts <command> --help`)",
    "  -v, --version  Print the version",
    "",
    "Environment:",
    "  TINKER_API_KEY       Use Tinker's cloud service with this key",
    "  TINKER_BASE_URL      Use this Tinker-compatible server (e.g. one started by tinker-ts serve)",
    "                       With neither, commands run on the embedded local CPU engine",
    "  TINKER_TS_CACHE_DIR  Where the local engine and tokenizers keep data (default ~/.cache/tinker-ts)",
    "",
    "Exit codes: 0 success, 1 failure, 2 usage error (each error is one line naming the fix).",
  ].join("\n");
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(`${usage()}\n`);
    return 2;
  }
  if (first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (first === "-v" || first === "--version") {
    process.stdout.write(`${TINKER_TS_VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) {
    process.stderr.write(`tinker-ts: unknown command "${first}"\n\n${usage()}\n`);
    return 2;
  }
  return (await command.load()).run(rest);
}

/** True when this module is the process entry point (also through the npm bin symlink). */
function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  runCli(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`tinker-ts: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
