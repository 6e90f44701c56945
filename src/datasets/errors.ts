import { TinkerValidationError } from "../client/errors.js";

/**
 * A dataset row (or file) is not in the expected format. The message starts with `file:line`;
 * `file` and `line` are also available as fields (`line` is 1-based, 0 when the whole file is bad).
 */
export class DatasetFormatError extends TinkerValidationError {
  override name = "DatasetFormatError";
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, reason: string, options?: { cause?: unknown }) {
    super(`${line > 0 ? `${file}:${line}` : file}: ${reason}`, "row", options);
    this.file = file;
    this.line = line;
  }
}

/** A dataset could not be found or fetched (unknown repo, split, or nothing cached offline). */
export class DatasetNotFoundError extends TinkerValidationError {
  override name = "DatasetNotFoundError";
}

/** What to do with a malformed row: throw a {@link DatasetFormatError}, or skip it and count it. */
export type OnBadRow = "error" | "skip";

/** A row that was skipped under `onBadRow: "skip"`. */
export interface SkippedRow {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}
