/**
 * GSM8K reinforcement learning: sample several answers per problem, reward the correct ones
 * (the grader reads the last \boxed{}), and push the model toward them (group-centred advantages).
 *
 *   npx tsx examples/gsm8k-rl.ts [--model tiny-bytes] [--train train.jsonl --test test.jsonl] ...
 *
 * By default the data comes from the Hugging Face hub (openai/gsm8k); --train/--test read local
 * JSONL files instead. Start from an SFT model with --load-checkpoint tinker://<run>/weights/final.
 * The output is the fine-tuned model reference (printed, and in <log-dir>/checkpoints.jsonl).
 * This is the program behind `tinker-ts rl` (same flags: --help).
 */
import { runCommand } from "../src/cli/args.js";
import { runRl } from "../src/cli/train.js";

// Parse the flags, build an RLRecipe over GSM8K env groups, train with progress, print the
// final sampler path. Test-set accuracy is logged as test/env/all/correct every --eval-every steps.
process.exitCode = await runCommand("rl", () => runRl(process.argv.slice(2)));
