/** The {@link Grader} interface and the built-in graders of whole model responses. */
import { extractBoxed, extractLooseAnswer } from "./math-extract.js";
import { gradeAnswer } from "./math-grading.js";

// ---------------------------------------------------------------------------------------------
// Grader interface
// ---------------------------------------------------------------------------------------------

/** The verdict of a {@link Grader} on one model response. */
export interface GradeResult {
  /** The response's answer matches the reference. */
  readonly correct: boolean;
  /** The response has the requested answer format (e.g. a `\boxed{}`); omit when not applicable. */
  readonly formatOk?: boolean;
  /** The answer the grader read from the response, or `null` when it found none. */
  readonly extracted: string | null;
}

/**
 * Grades a full model response against a reference answer. Implement it to plug a different answer
 * format or checker (an LLM judge, unit tests, ...) into {@link Gsm8kEnv} or your own `ProblemEnv`.
 */
export interface Grader {
  grade(response: string, reference: string): GradeResult | Promise<GradeResult>;
}

/** A {@link Grader} that answers synchronously. */
export interface SyncGrader extends Grader {
  grade(response: string, reference: string): GradeResult;
}

/**
 * The default GSM8K/math grader, as in the cookbook's RL env: the answer is the last `\boxed{}` of the
 * response ({@link extractBoxed}), the format is OK when there is one, and correctness is
 * {@link gradeAnswer}. A response without a box is wrong.
 */
export const boxedAnswerGrader: SyncGrader = {
  grade(response: string, reference: string): GradeResult {
    const extracted = extractBoxed(response);
    return {
      correct: extracted !== null && gradeAnswer(extracted, reference),
      formatOk: extracted !== null,
      extracted,
    };
  },
};

/**
 * A lenient grader for evaluating models that were not asked for a box: the last `\boxed{}`, else a
 * `#### x` line, else "answer is x" / "answer: x", else the last bold number, else the last number.
 * `formatOk` says whether a box was used.
 */
export const lenientAnswerGrader: SyncGrader = {
  grade(response: string, reference: string): GradeResult {
    const boxed = extractBoxed(response);
    const extracted = boxed ?? extractLooseAnswer(response);
    return {
      correct: extracted !== null && gradeAnswer(extracted, reference),
      formatOk: boxed !== null,
      extracted,
    };
  },
};
