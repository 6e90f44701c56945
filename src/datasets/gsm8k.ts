import { TinkerValidationError } from "../client/errors.js";
import { extractGsm8kFinalAnswer } from "../envs/math-extract.js";
import { DatasetFormatError, type OnBadRow, type SkippedRow } from "./errors.js";
import { type HubDatasetOptions, loadHubDataset } from "./hub.js";
import { expectObject, expectString, readJsonl } from "./jsonl.js";

/** One GSM8K problem. */
export interface Gsm8kProblem {
  /** Position in the split (0-based, before any shuffle). */
  readonly index: number;
  readonly question: string;
  /** The worked reference solution, ending with `#### <answer>`. */
  readonly solution: string;
  /** The final answer from the solution ({@link extractGsm8kFinalAnswer}), e.g. `"72"`. */
  readonly answer: string;
}

/** The GSM8K splits: `train` (7,473 problems) and `test` (1,319). */
export type Gsm8kSplit = "train" | "test";

/** Options of {@link Gsm8k.load}. */
export interface Gsm8kLoadOptions {
  split: Gsm8kSplit;
  /** A local JSONL file of `{"question", "answer"}` rows. When absent, the hub dataset is used. */
  path?: string;
  /** Hub options (cache, offline, mirror URL) used when `path` is absent. */
  hub?: Omit<HubDatasetOptions, "repo" | "config" | "split" | "onBadRow">;
  /** Default `"error"`: a malformed row throws a {@link DatasetFormatError} naming file and line. */
  onBadRow?: OnBadRow;
}

/** Hub coordinates of GSM8K. */
export const GSM8K_HUB = { repo: "openai/gsm8k", config: "main" } as const;

/**
 * The GSM8K grade-school math dataset (7,473 train / 1,319 test problems), from a local JSONL file
 * or from the hub (`openai/gsm8k`, config `main`).
 */
export class Gsm8k {
  readonly split: Gsm8kSplit;
  readonly problems: readonly Gsm8kProblem[];
  /** Malformed rows skipped under `onBadRow: "skip"`. */
  readonly skipped: number;
  readonly skippedRows: readonly SkippedRow[];
  /** The file (or hub dataset id) the rows came from. */
  readonly source: string;

  private constructor(
    split: Gsm8kSplit,
    problems: Gsm8kProblem[],
    skippedRows: SkippedRow[],
    skipped: number,
    source: string,
  ) {
    this.split = split;
    this.problems = problems;
    this.skippedRows = skippedRows;
    this.skipped = skipped;
    this.source = source;
  }

  /** Number of problems loaded. */
  get length(): number {
    return this.problems.length;
  }

  /**
   * Load one split from `options.path` (JSONL) or, without a path, from the hub.
   * @throws TinkerValidationError for an unknown split; DatasetFormatError for a malformed row
   *   (unless `onBadRow: "skip"`); DatasetNotFoundError / API errors from the hub.
   */
  static async load(options: Gsm8kLoadOptions): Promise<Gsm8k> {
    if (options.split !== "train" && options.split !== "test") {
      throw new TinkerValidationError(
        `GSM8K split must be "train" or "test", got ${JSON.stringify(options.split)}`,
        "split",
      );
    }
    const onBadRow = options.onBadRow ?? "error";
    if (options.path !== undefined) {
      const { rows, skipped, skippedRows } = await readJsonl(options.path, {
        parse: parseGsm8kRow,
        onBadRow,
      });
      const problems = rows.map((r, index) => ({ index, ...r }));
      return new Gsm8k(options.split, problems, skippedRows, skipped, options.path);
    }
    const hub = await loadHubDataset({
      ...options.hub,
      ...GSM8K_HUB,
      split: options.split,
    });
    const problems: Gsm8kProblem[] = [];
    const skippedRows: SkippedRow[] = [...hub.skippedRows];
    let skipped = hub.skipped;
    hub.rows.forEach((row, i) => {
      try {
        problems.push({ index: problems.length, ...parseGsm8kRow(row) });
      } catch (err) {
        const where = `${GSM8K_HUB.repo}/${GSM8K_HUB.config}/${options.split}`;
        const reason = `row ${i}: ${(err as Error).message}`;
        if (onBadRow === "error") throw new DatasetFormatError(where, 0, reason);
        skipped++;
        skippedRows.push({ file: where, line: 0, reason });
      }
    });
    return new Gsm8k(options.split, problems, skippedRows, skipped, `hf://${GSM8K_HUB.repo}`);
  }
}

/** Validate a `{"question", "answer"}` row and extract its final answer. */
export function parseGsm8kRow(value: unknown): Omit<Gsm8kProblem, "index"> {
  const row = expectObject(value);
  const question = expectString(row, "question");
  const solution = expectString(row, "answer");
  if (question.trim() === "") throw new Error(`field "question" is empty`);
  let answer: string;
  try {
    answer = extractGsm8kFinalAnswer(solution);
  } catch {
    throw new Error(`field "answer" has no final "#### <answer>" line`);
  }
  return { question, solution, answer };
}
