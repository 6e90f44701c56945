import { TINKER_TS_VERSION } from "../client/core/version.js";
import { serveCommand } from "./serve.js";
import type { Subcommand } from "./subcommand.js";

/** Every subcommand of `tinker-ts`; add new ones here. */
const COMMANDS: readonly Subcommand[] = [serveCommand];

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
  return command.run(rest);
}

const invokedDirectly =
  process.argv[1] !== undefined && /(?:^|[\\/])(?:cli|main)\.(?:[cm]?js|ts)$/.test(process.argv[1]);
if (invokedDirectly) {
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
