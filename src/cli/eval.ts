import { readJsonl } from "../datasets/jsonl.js";
import { writeJsonAtomic } from "../fs/atomic.js";
import { EXIT, parseFlags, runCommand, UsageError } from "./args.js";
import { type EvalSummary, evaluateAnswers, formatSummary, GRADERS } from "./gsm8k/evaluate.js";
import { parseAnswerRow } from "./gsm8k/rows.js";
import type { Subcommand } from "./subcommand.js";

export const EVAL_HELP = `Usage: tinker-ts eval <answers.jsonl> [--out <file>] [--grader boxed|lenient]

Grade the output of \`tinker-ts sample\` against the reference answers: print the accuracy with a
95% interval (Wilson score) and the breakdown correct / wrong / unparseable, and write it as JSON.
Calls no service.

Arguments:
  <answers.jsonl>     The inference output (one row per question: question, reference, response, ...)

Options:
  --out <file>        Where to write the JSON summary (default <answers>.eval.json); written
                      atomically, so a failed run leaves no partial file
  --grader <name>     boxed (default): the last \\boxed{} is the answer, none is unparseable;
                      lenient: else a "#### x" line, "answer is x", or the last number
  -h, --help          Show this help

Exit codes: 0 graded, 1 failure (missing file, malformed row, nothing to grade), 2 usage error.`;

export const EVAL_FLAGS = {
  out: { type: "string" },
  grader: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Options of {@link runEval}. */
export interface EvalOptions {
  input: string;
  out: string;
  grader: string;
}

/** The eval options from a command line, or null for `--help` (printed). */
export function parseEvalArgs(argv: readonly string[]): EvalOptions | null {
  const { values, positionals } = parseFlags(argv, EVAL_FLAGS, {
    min: 1,
    max: 1,
    name: "<answers.jsonl>",
  });
  if (values.help) {
    process.stdout.write(`${EVAL_HELP}\n`);
    return null;
  }
  const grader = values.grader ?? "boxed";
  if (GRADERS[grader] === undefined) {
    throw new UsageError(
      `--grader must be one of ${Object.keys(GRADERS).join(", ")}, got "${grader}"`,
    );
  }
  const input = positionals[0]!;
  return { input, out: values.out ?? `${input.replace(/\.jsonl$/, "")}.eval.json`, grader };
}

/** Read, grade, print one line, write the JSON summary. */
export async function runEval(options: EvalOptions): Promise<EvalSummary> {
  const { rows } = await readJsonl(options.input, { parse: parseAnswerRow });
  const summary = evaluateAnswers(rows, { input: options.input, grader: options.grader });
  if (summary.graded === 0) {
    throw new Error(
      `${options.input}: no row has a reference answer to grade against; give the questions an "answer" field before sampling`,
    );
  }
  await writeJsonAtomic(options.out, summary);
  process.stdout.write(`${formatSummary(summary)}\n`);
  process.stdout.write(`wrote ${options.out}\n`);
  return summary;
}

export const evalCommand: Subcommand = {
  run(argv) {
    return runCommand("eval", async () => {
      const options = parseEvalArgs(argv);
      if (options !== null) await runEval(options);
      return EXIT.ok;
    });
  },
};
