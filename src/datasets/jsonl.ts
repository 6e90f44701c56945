import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import { TinkerValidationError } from "../client/errors.js";
import { DatasetFormatError, type OnBadRow, type SkippedRow } from "./errors.js";

/** One parsed JSONL row and its 1-based line number in the file. */
export interface JsonlRow<T> {
  readonly line: number;
  readonly value: T;
}

/**
 * Turns a parsed JSON value into a row, or throws an `Error` whose message says what is wrong
 * (it becomes the reason of the {@link DatasetFormatError}).
 */
export type RowParser<T> = (value: unknown, line: number) => T;

/** Options of {@link readJsonlStream} and {@link readJsonl}. */
export interface JsonlReadOptions<T> {
  /** Validate / convert each row. Default: the parsed JSON value as is. */
  parse?: RowParser<T>;
  /** Default `"error"`: throw a {@link DatasetFormatError} naming file and line. */
  onBadRow?: OnBadRow;
  /** How many skipped rows to keep in {@link JsonlStream.skippedRows} (the count is exact). Default 100. */
  keepSkipped?: number;
}

/**
 * A JSONL file read line by line, never loaded whole. Blank lines are ignored. Under
 * `onBadRow: "skip"` malformed rows are counted in {@link skipped}.
 */
export class JsonlStream<T> implements AsyncIterable<JsonlRow<T>> {
  readonly path: string;
  /** Number of malformed rows skipped so far. */
  skipped = 0;
  /** The first skipped rows, with reasons. */
  readonly skippedRows: SkippedRow[] = [];
  private readonly options: JsonlReadOptions<T>;

  constructor(path: string, options: JsonlReadOptions<T> = {}) {
    this.path = path;
    this.options = options;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JsonlRow<T>> {
    const info = await stat(this.path).catch((err: NodeJS.ErrnoException) => {
      throw new TinkerValidationError(
        `cannot read JSONL file ${this.path}: ${err.code ?? err.message} (check the path and its permissions)`,
        "path",
      );
    });
    if (!info.isFile()) {
      throw new TinkerValidationError(
        `cannot read JSONL file ${this.path}: it is not a file (pass the path of a .jsonl file)`,
        "path",
      );
    }
    const parse = this.options.parse ?? ((v: unknown) => v as T);
    const skip = this.options.onBadRow === "skip";
    const keep = this.options.keepSkipped ?? 100;
    const input = createReadStream(this.path, { encoding: "utf8" });
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let lineNo = 0;
    try {
      for await (const raw of lines) {
        lineNo++;
        const text = lineNo === 1 ? raw.replace(/^\uFEFF/, "") : raw;
        if (text.trim() === "") continue;
        let value: T;
        try {
          value = parse(JSON.parse(text), lineNo);
        } catch (err) {
          const reason =
            err instanceof SyntaxError
              ? `invalid JSON (${err.message})`
              : err instanceof Error
                ? err.message
                : String(err);
          if (!skip) throw new DatasetFormatError(this.path, lineNo, reason);
          this.skipped++;
          if (this.skippedRows.length < keep) {
            this.skippedRows.push({ file: this.path, line: lineNo, reason });
          }
          continue;
        }
        yield { line: lineNo, value };
      }
    } finally {
      lines.close();
      // Closing readline does not close its input: a consumer that stops early (`break`, a thrown
      // DatasetFormatError) would otherwise leave the file descriptor open.
      input.destroy();
    }
  }
}

/**
 * Stream the rows of a JSONL file: `for await (const {line, value} of readJsonlStream(path))`.
 * Memory use is one line at a time, whatever the file size.
 */
export function readJsonlStream<T = unknown>(
  path: string,
  options: JsonlReadOptions<T> = {},
): JsonlStream<T> {
  return new JsonlStream(path, options);
}

/** Every row of a JSONL file (for files that fit in memory), plus the skipped-row report. */
export async function readJsonl<T = unknown>(
  path: string,
  options: JsonlReadOptions<T> = {},
): Promise<{ rows: T[]; skipped: number; skippedRows: SkippedRow[] }> {
  const stream = readJsonlStream(path, options);
  const rows: T[] = [];
  for await (const r of stream) rows.push(r.value);
  return { rows, skipped: stream.skipped, skippedRows: stream.skippedRows };
}

/** Helpers for writing {@link RowParser}s with clear messages. */
export function expectObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`expected a JSON object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** The string field `key` of `row`, or throw naming the field. */
export function expectString(row: Record<string, unknown>, key: string): string {
  const v = row[key];
  if (typeof v !== "string") throw new Error(`field "${key}" must be a string, got ${describe(v)}`);
  return v;
}

/** A short description of a JSON value's type, for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "nothing (missing)";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}
