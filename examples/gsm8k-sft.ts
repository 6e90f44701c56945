/**
 * GSM8K supervised fine-tuning: teach a model to answer grade-school math in the form the grader
 * reads (the worked solution, then \boxed{answer}).
 *
 *   npx tsx examples/gsm8k-sft.ts --data train.jsonl [--model tiny-bytes] [--epochs 1] ...
 *
 * The input is a JSONL file of {"question", "answer"} rows (GSM8K's own format; the repository
 * ships the dataset under test/fixtures/gsm8k, MIT). The output is a fine-tuned model reference,
 * tinker://<run>/sampler_weights/final, printed on stdout and recorded in <log-dir>/checkpoints.jsonl:
 * pass it to examples/gsm8k-inference.ts as --model. With no TINKER_API_KEY everything runs on the
 * embedded local engine. This is the program behind `tinker-ts sft` (same flags: --help).
 */
import { runCommand } from "../src/cli/args.js";
import { runSft } from "../src/cli/train.js";

// The whole program: parse the flags, build a SupervisedRecipe over the GSM8K rows (the one-shot
// prompt of the GSM8K env, the answer as the trained reply), run it with a progress bar, print
// the final sampler path. Ctrl-C stops after the steps in flight and writes a checkpoint;
// `--if-exists resume` continues exactly where it stopped.
process.exitCode = await runCommand("sft", () => runSft(process.argv.slice(2)));
