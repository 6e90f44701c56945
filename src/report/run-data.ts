/**
 * Reading a recipe's run directory (the format of `src/recipes/run-dir.ts`) into plain data for
 * the report: config, metrics rows, checkpoint records and RL rollout summaries.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TinkerValidationError } from "../client/errors.js";
import { readdirIfExists } from "../fs/atomic.js";
import { CHECKPOINTS_FILE, CONFIG_FILE, METRICS_FILE, readJsonLines } from "../recipes/run-dir.js";

/** One rollout of a summary file, reduced to what the report shows. */
export interface RolloutRow {
  iteration: number;
  split: string;
  groupIdx: number;
  trajIdx: number;
  /** The prompt (`ob_text` of the first step, else the env's logged question); null if absent. */
  prompt: string | null;
  /** The response (`ac_text` of the last step, else the env's logged response); null if absent. */
  response: string | null;
  reward: number;
  /** 1 / 0 from the trajectory or step metrics; null when the env reports none. */
  correct: number | null;
}

/** A run directory read back. */
export interface RunData {
  /** The directory, as given. */
  dir: string;
  /** `config.json`, or null when the run has none. */
  config: unknown;
  /** `metrics.jsonl` rows in file order. */
  metrics: Record<string, number>[];
  /** `checkpoints.jsonl` records. */
  checkpoints: Record<string, unknown>[];
  /** Rollouts from `iteration_NNNNNN/*_rollout_summaries.jsonl`, oldest iteration first. */
  rollouts: RolloutRow[];
}

const ITERATION_DIR = /^iteration_(\d+)$/;
const SUMMARY_FILE = /_rollout_summaries\.jsonl$/;

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function asRecord(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

/** One summary record (schema of `rolloutSummaryRecords`) as a {@link RolloutRow}. */
export function rolloutRow(record: unknown): RolloutRow {
  const r = asRecord(record);
  const steps = Array.isArray(r.steps) ? r.steps.map(asRecord) : [];
  const first = steps[0] ?? {};
  const last = steps[steps.length - 1] ?? {};
  const firstLogs = asRecord(first.logs);
  const lastLogs = asRecord(last.logs);
  const correct =
    num(asRecord(r.trajectory_metrics).correct) ??
    steps.map((s) => num(asRecord(s.metrics).correct)).find((c) => c !== null) ??
    null;
  return {
    iteration: num(r.iteration) ?? 0,
    split: str(r.split) ?? "",
    groupIdx: num(r.group_idx) ?? 0,
    trajIdx: num(r.traj_idx) ?? 0,
    prompt: str(first.ob_text) ?? str(firstLogs.question),
    response: str(last.ac_text) ?? str(lastLogs.response),
    reward: num(r.total_reward) ?? 0,
    correct,
  };
}

async function readRollouts(dir: string): Promise<RolloutRow[]> {
  const iterations = (await readdirIfExists(dir))
    .map((name) => ({ name, m: ITERATION_DIR.exec(name) }))
    .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]));
  const rows: RolloutRow[] = [];
  for (const { name } of iterations) {
    const files = (await readdirIfExists(join(dir, name))).filter((f) => SUMMARY_FILE.test(f));
    for (const file of files.sort()) {
      const { rows: records } = await readJsonLines<unknown>(join(dir, name, file));
      rows.push(...records.map(rolloutRow));
    }
  }
  return rows;
}

/**
 * Read the run in `dir`. A torn last line of a JSON-lines file (a crash mid-append) is skipped.
 * @throws TinkerValidationError (field `logDir`) when `dir` holds no run (neither `config.json`
 *   nor `metrics.jsonl`) or a file is not valid JSON.
 */
export async function loadRun(dir: string): Promise<RunData> {
  if (!(await isDir(dir))) {
    throw new TinkerValidationError(
      `no run directory at ${dir}; pass the logDir of an sft or rl run`,
      "logDir",
    );
  }
  let config: unknown = null;
  let hasConfig = false;
  try {
    const text = await readFile(join(dir, CONFIG_FILE), "utf8");
    hasConfig = true;
    config = JSON.parse(text);
  } catch (err) {
    if (hasConfig) {
      throw new TinkerValidationError(
        `${join(dir, CONFIG_FILE)} is not valid JSON; fix or delete it`,
        "logDir",
      );
    }
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const metricsPath = join(dir, METRICS_FILE);
  const metricsExist = await stat(metricsPath).then(
    () => true,
    () => false,
  );
  if (!hasConfig && !metricsExist) {
    throw new TinkerValidationError(
      `${dir} holds no run (no ${CONFIG_FILE} or ${METRICS_FILE}); pass the logDir of an sft or rl run`,
      "logDir",
    );
  }
  const metrics = (await readJsonLines<unknown>(metricsPath)).rows.map((row) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(asRecord(row))) {
      if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
    }
    return out;
  });
  const checkpoints = (await readJsonLines<unknown>(join(dir, CHECKPOINTS_FILE))).rows.map(
    asRecord,
  );
  return { dir, config, metrics, checkpoints, rollouts: await readRollouts(dir) };
}
