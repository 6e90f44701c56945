/**
 * The GSM8K programs' file formats. Questions in: `{"question", "answer"?}` JSONL (GSM8K's shape:
 * `answer` is the worked solution ending in `#### <final answer>`, or just the final answer).
 * Answers out: one {@link AnswerRow} per question, the input row's fields plus the model's answer.
 */
import { describe, expectObject, expectString } from "../../datasets/jsonl.js";
import { extractGsm8kFinalAnswer } from "../../envs/math-extract.js";

/** One question to answer. */
export interface QuestionRow {
  /** 0-based position in the questions file (blank lines not counted): the row's identity. */
  index: number;
  question: string;
  /** The reference solution or answer as given, or null. */
  answer: string | null;
  /** The reference final answer (`#### x` of the solution, else the answer as given), or null. */
  reference: string | null;
}

/** One answered question: a line of the inference output. */
export interface AnswerRow extends QuestionRow {
  /** The model reference that answered (base model name or tinker:// sampler path). */
  model: string;
  renderer: string;
  /** The sampled text (the parsed assistant message's text). */
  response: string;
  /** The final answer read from the response (last `\boxed{}`), or null when there is none. */
  extracted: string | null;
  /** The sampler's stop reason: `stop` (a stop sequence or EOS) or `length` (hit maxTokens). */
  stop_reason: string;
  /** How the renderer saw the end: `stop_sequence`, `eos`, `truncated`, ... */
  termination: string;
  prompt_tokens: number;
  completion_tokens: number;
}

/** The reference final answer of a GSM8K `answer` field. */
export function referenceOf(answer: string): string {
  return answer.includes("####") ? extractGsm8kFinalAnswer(answer) : answer.trim();
}

/** Parse a questions-file row (a {@link RowParser} for `readJsonl`; `index` set by the caller). */
export function parseQuestionRow(value: unknown): Omit<QuestionRow, "index"> {
  const row = expectObject(value);
  const question = expectString(row, "question");
  if (question.trim() === "") throw new Error(`field "question" is empty`);
  const raw = row.answer;
  if (raw !== undefined && raw !== null && typeof raw !== "string") {
    throw new Error(`field "answer" must be a string when present, got ${describe(raw)}`);
  }
  const answer = typeof raw === "string" ? raw : null;
  let reference: string | null = null;
  if (answer !== null) {
    try {
      reference = referenceOf(answer);
    } catch {
      throw new Error(`field "answer" has "####" but no final answer after it`);
    }
  }
  return { question, answer, reference };
}

function expectNumber(row: Record<string, unknown>, key: string): number {
  const v = row[key];
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(`field "${key}" must be a number, got ${describe(v)}`);
  }
  return v;
}

function nullableString(row: Record<string, unknown>, key: string): string | null {
  const v = row[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== "string")
    throw new Error(`field "${key}" must be a string or null, got ${describe(v)}`);
  return v;
}

/** Parse a line of the inference output (what eval reads). */
export function parseAnswerRow(value: unknown): AnswerRow {
  const row = expectObject(value);
  const index = expectNumber(row, "index");
  if (!Number.isInteger(index) || index < 0)
    throw new Error(`field "index" must be an integer >= 0`);
  return {
    index,
    question: expectString(row, "question"),
    answer: nullableString(row, "answer"),
    reference: nullableString(row, "reference"),
    model: expectString(row, "model"),
    renderer: expectString(row, "renderer"),
    response: expectString(row, "response"),
    extracted: nullableString(row, "extracted"),
    stop_reason: expectString(row, "stop_reason"),
    termination: expectString(row, "termination"),
    prompt_tokens: expectNumber(row, "prompt_tokens"),
    completion_tokens: expectNumber(row, "completion_tokens"),
  };
}
