/**
 * The inference output as a resumable log: one JSON row per line, each append fsynced, so a kill
 * loses at most the row being written. On open, a torn last line (no newline) is cut off and the
 * complete rows are read back, so a restart skips the questions already answered.
 */
import { type FileHandle, open, readFile, truncate } from "node:fs/promises";
import { TinkerValidationError } from "../../client/errors.js";
import { DatasetFormatError } from "../../datasets/errors.js";
import { type AnswerRow, parseAnswerRow } from "./rows.js";

export class AnswerLog {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    /** The rows already in the file (earlier runs), by question index. */
    readonly previous: ReadonlyMap<number, AnswerRow>,
    /** True when a torn last line was cut off on open. */
    readonly cutTornTail: boolean,
  ) {}

  /** Read back what `path` holds (if anything), cut a torn tail, and open it for appending. */
  static async open(path: string): Promise<AnswerLog> {
    let text = "";
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const end = text.lastIndexOf("\n") + 1;
    const torn = end < text.length;
    const previous = new Map<number, AnswerRow>();
    text
      .slice(0, end)
      .split("\n")
      .forEach((line, i) => {
        if (line.trim() === "") return;
        let row: AnswerRow;
        try {
          row = parseAnswerRow(JSON.parse(line));
        } catch (err) {
          const reason = err instanceof SyntaxError ? "invalid JSON" : (err as Error).message;
          throw new DatasetFormatError(
            path,
            i + 1,
            `${reason}; this output file was edited or is not one of ours: fix or delete the line, or pass another --out`,
          );
        }
        previous.set(row.index, row);
      });
    if (torn) await truncate(path, Buffer.byteLength(text.slice(0, end)));
    const handle = await open(path, "a");
    return new AnswerLog(path, handle, previous, torn);
  }

  /** Append one row and fsync it; appends are serialised, so concurrent callers never interleave. */
  append(row: AnswerRow): Promise<void> {
    const next = this.chain.then(async () => {
      await this.handle.appendFile(`${JSON.stringify(row)}\n`);
      await this.handle.sync();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
    await this.handle.close();
  }
}

/** Check that a resumed output belongs to this run: same model and the same questions. */
export function checkResumable(
  previous: ReadonlyMap<number, AnswerRow>,
  expected: { model: string; questions: ReadonlyMap<number, string>; out: string },
): void {
  for (const row of previous.values()) {
    if (row.model !== expected.model) {
      throw new TinkerValidationError(
        `${expected.out} holds answers of model "${row.model}", not "${expected.model}"; pass another --out or delete it`,
        "out",
      );
    }
    const q = expected.questions.get(row.index);
    if (q !== undefined && q !== row.question) {
      throw new TinkerValidationError(
        `${expected.out} row ${row.index} answers a different question than the questions file; pass another --out or delete it`,
        "out",
      );
    }
  }
}
