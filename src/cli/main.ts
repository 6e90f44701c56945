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
  // sft and rl (the training recipes) go here.
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
  ].join("\n");
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(`${usage()}\n`);
    return first === undefined ? 1 : 0;
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
