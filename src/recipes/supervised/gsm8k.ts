/**
 * GSM8K as SFT data, in the same chat format the GSM8K env and `tinker-ts sample` prompt with: the
 * one-shot example, then the question with the `\boxed{}` instruction; the target is the worked
 * solution (calculator annotations removed) ending in `\boxed{<answer>}`. A model trained on it
 * answers in the form the grader reads.
 */
import { Gsm8k, type Gsm8kLoadOptions, type Gsm8kProblem } from "../../datasets/gsm8k.js";
import { BOXED_QUESTION_SUFFIX, standardFewshotPrefix } from "../../envs/gsm8k-env.js";
import { type Message, TrainOnWhat } from "../../renderers/types.js";
import { type ChatDataOptions, mappedRows, type SupervisedDatasetBuilder } from "./dataset.js";

/** The reasoning of a GSM8K solution without `<<48/2=24>>` annotations and the `####` line. */
export function gsm8kReasoning(solution: string): string {
  return solution
    .replace(/<<[^>]*>>/g, "")
    .replace(/\n?####[^\n]*$/, "")
    .trim();
}

/** How a GSM8K problem becomes a chat example. */
export interface Gsm8kSftFormat {
  /** Prefix the one-shot example (as the env's prompt does). Default true. */
  fewshot?: boolean;
  /**
   * Train on the final answer alone (`\boxed{72}`) instead of the worked solution: the answer
   * format without the reasoning, which even a tiny model picks up in a few dozen steps.
   */
  answerOnly?: boolean;
}

/** One GSM8K problem as a chat example whose assistant turn ends with `\boxed{answer}`. */
export function gsm8kSftConversation(
  p: Pick<Gsm8kProblem, "question" | "solution" | "answer">,
  options: Gsm8kSftFormat = {},
): Message[] {
  const boxed = `\\boxed{${p.answer}}`;
  return [
    ...(options.fewshot === false ? [] : standardFewshotPrefix()),
    { role: "user", content: `${p.question}${BOXED_QUESTION_SUFFIX}` },
    {
      role: "assistant",
      content: options.answerOnly === true ? boxed : `${gsm8kReasoning(p.solution)} ${boxed}`,
    },
  ];
}

/** Options of {@link gsm8kSft}. */
export interface Gsm8kSftOptions extends Omit<ChatDataOptions, "trainOnWhat">, Gsm8kSftFormat {
  /** A local JSONL file of `{"question", "answer"}` rows; default: the hub's train split. */
  path?: string;
  hub?: Gsm8kLoadOptions["hub"];
  /** Use only the first this-many rows of the file (before the shuffle). */
  limit?: number;
}

/** SFT on GSM8K: trains the last assistant message (the answer) of each example. */
export function gsm8kSft(options: Gsm8kSftOptions): SupervisedDatasetBuilder {
  const inner = mappedRows(
    options.path ?? "openai/gsm8k:train",
    async () => {
      const data = await Gsm8k.load({
        split: "train",
        ...(options.path !== undefined ? { path: options.path } : {}),
        ...(options.hub !== undefined ? { hub: options.hub } : {}),
      });
      return options.limit === undefined ? data.problems : data.problems.slice(0, options.limit);
    },
    (p: Gsm8kProblem) =>
      gsm8kSftConversation(p, {
        ...(options.fewshot !== undefined ? { fewshot: options.fewshot } : {}),
        ...(options.answerOnly !== undefined ? { answerOnly: options.answerOnly } : {}),
      }),
    { ...options, trainOnWhat: TrainOnWhat.LAST_ASSISTANT_MESSAGE },
  );
  return {
    describe: () => ({
      ...inner.describe(),
      kind: "gsm8k_sft",
      limit: options.limit ?? null,
      fewshot: options.fewshot ?? true,
      answerOnly: options.answerOnly ?? false,
    }),
    build: (ctx) => inner.build(ctx),
  };
}
