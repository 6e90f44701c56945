/**
 * The run directory of a recipe, in the cookbook's file formats so its users' tools read ours:
 * `config.json` (written atomically), `metrics.jsonl` and `checkpoints.jsonl` (one JSON object per
 * line, each append fsynced). A crash can at worst leave an unterminated last line; readers skip
 * it and {@link RunDir.open} cuts it off before anything else is appended.
 */
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { TinkerValidationError } from "../client/errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../fs/atomic.js";

/** What to do when the log dir already holds a run. */
export type IfExists = "resume" | "overwrite" | "fail";

export const CONFIG_FILE = "config.json";
export const METRICS_FILE = "metrics.jsonl";
export const CHECKPOINTS_FILE = "checkpoints.jsonl";

/** One line of `metrics.jsonl`: `{"step": n, ...metrics}`. */
export type MetricsRow = { step: number } & Record<string, number>;

/**
 * One line of `checkpoints.jsonl`. `name`, `batch`, `epoch`, `final`, `state_path` and
 * `sampler_path` are the cookbook's fields; `step` and `loop_state` are ours (exact resume).
 */
export interface CheckpointRecord {
  name: string;
  /** The next step to run after this checkpoint (the number of steps it contains). */
  step: number;
  epoch: number;
  batch: number;
  final: boolean;
  state_path?: string;
  sampler_path?: string;
  /** Recipe-specific resume state (see `loop-state.ts`). */
  loop_state: Record<string, unknown>;
}

/** A JSON-lines file read back: the complete rows, and whether a torn last line was dropped. */
export interface JsonlContents<T> {
  rows: T[];
  tornTail: boolean;
}

/** Read a JSON-lines file written by `appendJsonLine`; a missing file has no rows. */
export async function readJsonLines<T>(path: string): Promise<JsonlContents<T>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { rows: [], tornTail: false };
    throw err;
  }
  const lines = text.split("\n");
  const last = lines.pop() ?? "";
  const rows: T[] = [];
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      throw new TinkerValidationError(
        `${path} line ${i + 1} is not valid JSON; the file was edited or corrupted. ` +
          `Fix or delete the line, or start over with ifExists: "overwrite"`,
        "logDir",
      );
    }
  }
  // Every complete line ends with "\n": text after the last newline is a torn append.
  return { rows, tornTail: last.trim() !== "" };
}

/** Append one JSON line and fsync it before returning. */
export async function appendJsonLine(path: string, value: unknown): Promise<void> {
  const handle = await open(path, "a");
  try {
    await handle.appendFile(`${JSON.stringify(value)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replace a JSON-lines file atomically with `rows`. */
async function rewriteJsonLines(path: string, rows: readonly unknown[]): Promise<void> {
  await writeFileAtomic(path, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Stable JSON text (sorted keys) for comparing configs. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    }
    return v;
  });
}

/** The first differing key path of two JSON values, for error messages. */
function firstDifference(a: unknown, b: unknown, path = ""): string | undefined {
  if (canonicalJson(a) === canonicalJson(b)) return undefined;
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      );
      if (d !== undefined) return d;
    }
  }
  return path || "(root)";
}

/** The run directory opened by a recipe. */
export class RunDir {
  private constructor(
    readonly path: string,
    /** True when an earlier run's files were found and kept (`ifExists: "resume"`). */
    readonly resumed: boolean,
    private checkpoints: CheckpointRecord[],
  ) {}

  /**
   * Open `path` for a run with `config` (a JSON-ready description). An empty or missing folder
   * starts a new run. A folder holding a run is resumed, wiped or refused per `ifExists`; resuming
   * requires the same config, so a different run's files are never mixed in.
   */
  static async open(path: string, config: unknown, ifExists: IfExists): Promise<RunDir> {
    const configPath = join(path, CONFIG_FILE);
    const held = await exists(configPath);
    if (held && ifExists === "fail") {
      throw new TinkerValidationError(
        `log dir ${path} already holds a run (${CONFIG_FILE}); pass ifExists: "resume" to continue it ` +
          `or ifExists: "overwrite" to delete it and start over, or choose another logDir`,
        "ifExists",
      );
    }
    if (held && ifExists === "resume") {
      let saved: unknown;
      try {
        saved = JSON.parse(await readFile(configPath, "utf8"));
      } catch {
        throw new TinkerValidationError(
          `${configPath} is not valid JSON; delete the log dir or pass ifExists: "overwrite"`,
          "logDir",
        );
      }
      const diff = firstDifference(saved, JSON.parse(JSON.stringify(config)));
      if (diff !== undefined) {
        throw new TinkerValidationError(
          `log dir ${path} holds a run with a different config (first difference: ${diff}); ` +
            `resume it with its own config, pass ifExists: "overwrite" to replace it, or choose another logDir`,
          "logDir",
        );
      }
      const dir = new RunDir(path, true, []);
      await dir.cutTornTails();
      dir.checkpoints = (await readJsonLines<CheckpointRecord>(dir.file(CHECKPOINTS_FILE))).rows;
      return dir;
    }
    if (held) await rm(path, { recursive: true, force: true });
    await mkdir(path, { recursive: true });
    await writeJsonAtomic(configPath, config);
    return new RunDir(path, false, []);
  }

  file(name: string): string {
    return join(this.path, name);
  }

  private async cutTornTails(): Promise<void> {
    for (const name of [METRICS_FILE, CHECKPOINTS_FILE]) {
      const { rows, tornTail } = await readJsonLines(this.file(name));
      if (tornTail) await rewriteJsonLines(this.file(name), rows);
    }
  }

  /** The checkpoint records so far, oldest first. */
  get checkpointRecords(): readonly CheckpointRecord[] {
    return this.checkpoints;
  }

  /** The last record that can resume training (has a `state_path`). */
  lastResumable(): CheckpointRecord | undefined {
    for (let i = this.checkpoints.length - 1; i >= 0; i--) {
      if (this.checkpoints[i]!.state_path !== undefined) return this.checkpoints[i];
    }
    return undefined;
  }

  async appendMetrics(row: MetricsRow): Promise<void> {
    await appendJsonLine(this.file(METRICS_FILE), row);
  }

  async appendCheckpoint(record: CheckpointRecord): Promise<void> {
    await appendJsonLine(this.file(CHECKPOINTS_FILE), record);
    this.checkpoints.push(record);
  }

  async readMetrics(): Promise<MetricsRow[]> {
    return (await readJsonLines<MetricsRow>(this.file(METRICS_FILE))).rows;
  }

  /**
   * Keep only the metrics rows of steps before `step` (a resumed run recomputes the rest, so no
   * step is logged twice). Checkpoint records after `step` are dropped too.
   */
  async rewindTo(step: number): Promise<void> {
    const metrics = await this.readMetrics();
    const kept = metrics.filter((r) => r.step < step);
    if (kept.length !== metrics.length) await rewriteJsonLines(this.file(METRICS_FILE), kept);
    const ckpts = this.checkpoints.filter((c) => c.step <= step);
    if (ckpts.length !== this.checkpoints.length) {
      await rewriteJsonLines(this.file(CHECKPOINTS_FILE), ckpts);
      this.checkpoints = ckpts;
    }
  }

  /** Write a JSON file inside the run dir atomically (rollout summaries, async queues). */
  async writeJson(name: string, value: unknown): Promise<void> {
    await writeJsonAtomic(this.file(name), value, { indent: 0 });
  }

  /** Write a JSON-lines file inside the run dir atomically. */
  async writeJsonLines(name: string, rows: readonly unknown[]): Promise<void> {
    await rewriteJsonLines(this.file(name), rows);
  }

  async readJson<T>(name: string): Promise<T> {
    return JSON.parse(await readFile(this.file(name), "utf8")) as T;
  }
}
