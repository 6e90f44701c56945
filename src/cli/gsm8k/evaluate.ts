/** Grading answered GSM8K questions: accuracy with a Wilson 95% interval and the breakdown. */
import { boxedAnswerGrader, lenientAnswerGrader, type SyncGrader } from "../../envs/graders.js";
import type { AnswerRow } from "./rows.js";

/** The graders eval can use, by flag value. */
export const GRADERS: Readonly<Record<string, SyncGrader>> = {
  boxed: boxedAnswerGrader,
  lenient: lenientAnswerGrader,
};

/** z of a two-sided 95% normal interval. */
const Z95 = 1.959963984540054;

/**
 * The Wilson score interval of `successes` out of `n` (95% by default): unlike the normal
 * approximation it stays inside [0, 1] and is sensible at 0 or n successes and for small n.
 */
export function wilsonInterval(
  successes: number,
  n: number,
  z = Z95,
): { low: number; high: number } {
  if (n === 0) return { low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** The eval result, as printed and written to JSON. */
export interface EvalSummary {
  input: string;
  grader: string;
  /** Rows in the file. */
  rows: number;
  /** Rows with a reference answer (the others are not graded). */
  graded: number;
  correct: number;
  /** An answer was found but it does not match the reference. */
  wrong: number;
  /** No answer could be read from the response (e.g. no `\boxed{}`). */
  unparseable: number;
  no_reference: number;
  /** correct / graded. */
  accuracy: number;
  ci95: { low: number; high: number; method: "wilson" };
  /** Responses that hit the token limit (stop_reason `length`). */
  truncated: number;
  /** Mean completion tokens per graded row. */
  mean_completion_tokens: number;
}

/** Grade every row that has a reference. */
export function evaluateAnswers(
  rows: readonly AnswerRow[],
  options: { input: string; grader: string },
): EvalSummary {
  const grader = GRADERS[options.grader];
  if (grader === undefined) throw new Error(`unknown grader "${options.grader}"`);
  let correct = 0;
  let wrong = 0;
  let unparseable = 0;
  let truncated = 0;
  let tokens = 0;
  for (const row of rows) {
    if (row.reference === null) continue;
    const grade = grader.grade(row.response, row.reference);
    if (grade.correct) correct++;
    else if (grade.extracted === null) unparseable++;
    else wrong++;
    if (row.stop_reason === "length") truncated++;
    tokens += row.completion_tokens;
  }
  const graded = correct + wrong + unparseable;
  const ci = wilsonInterval(correct, graded);
  return {
    input: options.input,
    grader: options.grader,
    rows: rows.length,
    graded,
    correct,
    wrong,
    unparseable,
    no_reference: rows.length - graded,
    accuracy: graded > 0 ? correct / graded : 0,
    ci95: { ...ci, method: "wilson" },
    truncated,
    mean_completion_tokens: graded > 0 ? tokens / graded : 0,
  };
}

/** One line for the terminal. */
export function formatSummary(s: EvalSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const skipped = s.no_reference > 0 ? `; ${s.no_reference} without a reference not graded` : "";
  return (
    `accuracy ${pct(s.accuracy)} (95% CI ${pct(s.ci95.low)}-${pct(s.ci95.high)}, Wilson) on ${s.graded} questions: ` +
    `${s.correct} correct, ${s.wrong} wrong, ${s.unparseable} unparseable${skipped}`
  );
}
