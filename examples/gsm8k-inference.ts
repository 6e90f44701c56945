/**
 * GSM8K inference: ask a model grade-school math questions and save its answers.
 *
 *   npx tsx examples/gsm8k-inference.ts questions.jsonl --model tiny-bytes --out answers.jsonl
 *   npx tsx examples/gsm8k-inference.ts questions.jsonl --model tinker://<run>/sampler_weights/final --out answers.jsonl
 *
 * The input is GSM8K's JSONL shape, {"question": ..., "answer": "...#### 18"}; the model is a base
 * model name or a sampler checkpoint that SFT or RL wrote. Without TINKER_API_KEY everything runs
 * on the embedded local CPU engine (the tiny presets); with it, on Tinker's cloud, unchanged.
 *
 * What happens per question (src/cli/gsm8k/inference.ts):
 *   1. The GSM8K env builds the prompt the RL recipe trains on: a one-shot example, then the
 *      question and "Write your answer in \boxed{} format.", rendered in the model's chat format
 *      (its recommended renderer, or --renderer).
 *   2. One sample is drawn (greedy by default), up to --max-tokens, stopping at the end of the
 *      assistant turn; --concurrency requests are in flight at once.
 *   3. The renderer parses the sampled tokens back into a message; its last \boxed{} is the answer.
 *   4. The row (question, reference, response, answer, stop reason, token counts) is appended to
 *      --out and fsynced. Kill the program at any time: run it again and it carries on.
 *
 * Grade the output with examples/gsm8k-eval.ts. This is the program behind `tinker-ts sample`
 * (same flags, same output); --help lists them.
 */
import { runCommand } from "../src/cli/args.js";
import { parseSampleArgs, runSample } from "../src/cli/sample.js";

process.exitCode = await runCommand("sample", async () => {
  const options = parseSampleArgs(process.argv.slice(2));
  if (options === null) return 0; // --help was printed
  await runSample(options);
  return 0;
});
