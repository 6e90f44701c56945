/**
 * GSM8K evaluation: grade a model's answers and report its accuracy.
 *
 *   npx tsx examples/gsm8k-eval.ts answers.jsonl [--out eval.json] [--grader boxed|lenient]
 *
 * The input is the output of examples/gsm8k-inference.ts (or `tinker-ts sample`): one JSON row
 * per question with the reference answer and the model's response. Each response is graded by
 * the same grader the RL environment uses (the last \boxed{...}, compared numerically with the
 * reference), and every row lands in one of three bins: correct, wrong (an answer that does not
 * match) or unparseable (no answer found). The accuracy comes with a 95% Wilson interval: on a
 * few hundred questions the interval is several points wide, so compare runs with it in mind.
 *
 * No service is called. This is the program behind `tinker-ts eval` (same flags, same output).
 */
import { runCommand } from "../src/cli/args.js";
import { parseEvalArgs, runEval } from "../src/cli/eval.js";

process.exitCode = await runCommand("eval", async () => {
  // 1. The command line: input file, where to write the summary, which grader.
  const options = parseEvalArgs(process.argv.slice(2));
  if (options === null) return 0; // --help was printed
  // 2. Read the answers, grade each one, print the accuracy line and write the JSON summary
  //    atomically (a crash never leaves a half-written file that looks like a result).
  const summary = await runEval(options);
  // 3. The summary is plain data: use it in your own code as you like.
  return summary.graded > 0 ? 0 : 1;
});
