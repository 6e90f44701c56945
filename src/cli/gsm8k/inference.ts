/**
 * GSM8K inference: ask a model every question of a JSONL file, with the GSM8K env's prompt (the
 * cookbook's one-shot "strawberry" example, then the question and "Write your answer in
 * \boxed{} format."), and log each answer as it arrives. Sampling runs `concurrency` requests at
 * a time; the log is resumable (see {@link AnswerLog}).
 */
import { TinkerError, TinkerValidationError } from "../../client/errors.js";
import type { SamplingClient } from "../../client/sampling-client.js";
import type { ServiceClient } from "../../client/service-client.js";
import { readJsonl } from "../../datasets/jsonl.js";
import { Gsm8kEnv, standardFewshotPrefix } from "../../envs/gsm8k-env.js";
import { extractBoxed } from "../../envs/math-extract.js";
import { getTextContent } from "../../renderers/content.js";
import { recommendedRenderer } from "../../renderers/model-info.js";
import { getRenderer } from "../../renderers/registry.js";
import type { Renderer } from "../../renderers/types.js";
import { loadTokenizer } from "../../tokenizers/loader.js";
import { resolveTokenizerId } from "../../tokenizers/names.js";
import { oneLine } from "../args.js";
import { AnswerLog, checkResumable } from "./answer-log.js";
import { type AnswerRow, parseQuestionRow, type QuestionRow } from "./rows.js";

/** Options of {@link runInference}. */
export interface InferenceOptions {
  /** A base model name or a `tinker://<run>/sampler_weights/<name>` path. */
  model: string;
  questions: string;
  out: string;
  /** Default: the model's recommended renderer. */
  renderer?: string;
  maxTokens: number;
  temperature: number;
  concurrency: number;
  /** Only the first `limit` questions. */
  limit?: number;
  seed?: number;
}

/** Progress callbacks (the CLI draws a bar with them). */
export interface InferenceHooks {
  start?(info: { total: number; done: number; model: string; renderer: string }): void;
  answered?(row: AnswerRow, done: number, total: number): void;
}

/** What a run did. */
export interface InferenceResult {
  /** Questions in the (limited) input. */
  total: number;
  /** Answered by earlier runs and skipped. */
  skipped: number;
  /** Answered now. */
  answered: number;
  renderer: string;
  baseModel: string;
  cutTornTail: boolean;
}

/** The questions file's rows, numbered in file order. */
export async function loadQuestions(path: string, limit?: number): Promise<QuestionRow[]> {
  const { rows } = await readJsonl(path, { parse: parseQuestionRow });
  const numbered = rows.map((r, index) => ({ index, ...r }));
  return limit === undefined ? numbered : numbered.slice(0, limit);
}

/** A sampling client on a base model or a sampler checkpoint. */
export function openSampler(service: ServiceClient, model: string): Promise<SamplingClient> {
  return service.createSamplingClient(
    model.startsWith("tinker://") ? { modelPath: model } : { baseModel: model },
  );
}

/** Answer one question: build the env's prompt, sample, parse the response. */
export async function answerQuestion(
  q: QuestionRow,
  ctx: {
    sampler: SamplingClient;
    renderer: Renderer;
    rendererName: string;
    options: InferenceOptions;
  },
): Promise<AnswerRow> {
  const { sampler, renderer, options } = ctx;
  // The env builds exactly the prompt the RL recipe trains on.
  const env = new Gsm8kEnv({ question: q.question, answer: q.reference ?? "" }, renderer, {
    convoPrefix: standardFewshotPrefix(),
  });
  const { observation, stopCondition } = await env.initialObservation();
  const { sequences } = await sampler.sample(observation, 1, {
    maxTokens: options.maxTokens,
    temperature: options.temperature,
    stop: stopCondition,
    ...(options.seed === undefined ? {} : { seed: options.seed + q.index }),
  });
  const seq = sequences[0]!;
  const { message, termination } = renderer.parseResponse(seq.tokens);
  const response = getTextContent(message);
  return {
    ...q,
    model: options.model,
    renderer: ctx.rendererName,
    response,
    extracted: extractBoxed(response),
    stop_reason: seq.stopReason,
    termination,
    prompt_tokens: observation.length,
    completion_tokens: seq.tokens.length,
  };
}

/** Run `work` over `items` with at most `limit` in flight; the first error stops new work. */
async function boundedEach<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
) {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  const error = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (error) throw error.reason;
}

/**
 * Answer every question of `options.questions` not yet in `options.out`. The model and renderer
 * are checked before the output file is touched, so a bad model reference leaves no file.
 */
export async function runInference(
  service: ServiceClient,
  options: InferenceOptions,
  hooks: InferenceHooks = {},
): Promise<InferenceResult> {
  const questions = await loadQuestions(options.questions, options.limit);
  if (questions.length === 0) {
    throw new TinkerValidationError(
      `${options.questions} has no questions; give it {"question": ..., "answer": ...} rows, one per line`,
      "questions",
    );
  }
  const sampler = await openSampler(service, options.model);
  const baseModel = await sampler.getBaseModel();
  const rendererName = options.renderer ?? recommendedRenderer(baseModel);
  const renderer = getRenderer(rendererName, await loadTokenizer(resolveTokenizerId(baseModel)));

  const log = await AnswerLog.open(options.out);
  try {
    checkResumable(log.previous, {
      model: options.model,
      questions: new Map(questions.map((q) => [q.index, q.question])),
      out: options.out,
    });
    const todo = questions.filter((q) => !log.previous.has(q.index));
    let done = questions.length - todo.length;
    hooks.start?.({ total: questions.length, done, model: options.model, renderer: rendererName });
    const ctx = { sampler, renderer, rendererName, options };
    try {
      await boundedEach(todo, options.concurrency, async (q) => {
        const row = await answerQuestion(q, ctx);
        await log.append(row);
        done++;
        hooks.answered?.(row, done, questions.length);
      });
    } catch (err) {
      // The rows written so far are complete and kept: say so, and how to carry on.
      const why = oneLine(err);
      throw new TinkerError(
        `${why}; ${done} of ${questions.length} questions are answered in ${options.out}: fix the cause and run the same command again to resume`,
        { cause: err },
      );
    }
    return {
      total: questions.length,
      skipped: questions.length - todo.length,
      answered: todo.length,
      renderer: rendererName,
      baseModel,
      cutTornTail: log.cutTornTail,
    };
  } finally {
    await log.close();
    await sampler.close();
  }
}
