/**
 * Exact resume: a recipe run in a child process is killed with SIGKILL at a random point (after a
 * random number of metrics rows), started again with the same config, and must end with the same
 * metrics rows (timing keys aside) and byte-identical final adapter weights as a run that was never
 * stopped. SFT (pipelined, submitAhead 1), RL on-policy, and RL with the off-policy queue.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTinkerPath } from "../../src/client/wire/paths.js";
import { readJsonLines } from "../../src/recipes/run-dir.js";
import { type ResumeKind, resumeRecipe, startRecipeServer } from "./fixtures.js";

type Server = Awaited<ReturnType<typeof startRecipeServer>>;

const children = new Set<ChildProcess>();

function startChild(kind: ResumeKind, baseUrl: string, logDir: string): ChildProcess {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "test/recipes/recipe-child.ts", kind, baseUrl, logDir],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

function finished(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  let out = "";
  let err = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, out, err })),
  );
}

async function metricRows(logDir: string): Promise<number> {
  return (await readJsonLines(join(logDir, "metrics.jsonl"))).rows.length;
}

/** Run to completion, killing the first attempt once it has written `killAfter` metrics rows. */
async function runKilled(kind: ResumeKind, baseUrl: string, logDir: string, killAfter: number) {
  const child = startChild(kind, baseUrl, logDir);
  const exit = finished(child);
  let killed = false;
  const poll = setInterval(() => {
    void metricRows(logDir)
      .then((n) => {
        if (n >= killAfter && !killed) {
          killed = true;
          child.kill("SIGKILL");
        }
      })
      .catch(() => undefined);
  }, 5);
  const first = await exit;
  clearInterval(poll);
  expect(first.signal, `the child ended before it was killed: ${first.err}`).toBe("SIGKILL");
  const second = await finished(startChild(kind, baseUrl, logDir));
  expect(second.code, second.err).toBe(0);
  return JSON.parse(second.out.trim().split("\n").at(-1)!) as { statePath: string };
}

/** The uninterrupted run, in this process (the same recipe and config as the child's). */
async function runWhole(kind: ResumeKind, s: Server, logDir: string) {
  return resumeRecipe(kind, s.service, logDir).run() as Promise<{ statePath: string }>;
}

/** Metrics rows without timing keys. */
async function comparableMetrics(logDir: string) {
  const { rows, tornTail } = await readJsonLines<Record<string, number>>(
    join(logDir, "metrics.jsonl"),
  );
  expect(tornTail).toBe(false);
  return rows.map((r) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith("time/"))),
  );
}

function expectRowsClose(a: Record<string, number>[], b: Record<string, number>[]) {
  expect(a.map((r) => r.step)).toEqual(b.map((r) => r.step));
  for (const [i, row] of a.entries()) {
    expect(Object.keys(row).sort()).toEqual(Object.keys(b[i]!).sort());
    for (const [k, v] of Object.entries(row)) {
      const w = b[i]![k]!;
      expect(Math.abs(v - w), `step ${row.step} ${k}: ${v} vs ${w}`).toBeLessThanOrEqual(
        1e-6 * Math.max(1, Math.abs(v), Math.abs(w)),
      );
    }
  }
}

/** The adapter tensors of a saved training state, file by file. */
async function stateTensors(dataDir: string, statePath: string): Promise<Map<string, Buffer>> {
  const p = parseTinkerPath(statePath);
  const dir = join(dataDir, "runs", encodeURIComponent(p.trainingRunId), "weights", p.name);
  const out = new Map<string, Buffer>();
  for (const f of await readdir(dir)) {
    if (f.endsWith(".safetensors")) out.set(f, await readFile(join(dir, f)));
  }
  expect(out.size).toBeGreaterThan(0);
  return out;
}

describe("exact resume after kill -9", () => {
  let s: Server;
  beforeAll(async () => {
    s = await startRecipeServer("recipes-resume");
  });
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await s?.close();
  });

  it.each<[ResumeKind, number]>([
    ["sft", 8],
    ["rl", 7],
    ["rl-async", 7],
  ])(
    "%s: the resumed run equals the uninterrupted one",
    async (kind, steps) => {
      // After at least one checkpoint (saved every 2 steps), so the resume restores a real state.
      const killAfter = 3 + Math.floor(Math.random() * (steps - 4));
      console.log(`${kind}: killing after ${killAfter} of ${steps} metrics rows`);
      const whole = await runWhole(kind, s, join(s.dir, `${kind}-whole`));
      const resumed = await runKilled(kind, s.server.url, join(s.dir, `${kind}-killed`), killAfter);
      const a = await comparableMetrics(join(s.dir, `${kind}-whole`));
      const b = await comparableMetrics(join(s.dir, `${kind}-killed`));
      expect(a).toHaveLength(steps);
      expectRowsClose(a, b);
      const wa = await stateTensors(s.dir, whole.statePath);
      const wb = await stateTensors(s.dir, resumed.statePath);
      expect([...wb.keys()]).toEqual([...wa.keys()]);
      for (const [f, bytes] of wa) expect(wb.get(f)!.equals(bytes), f).toBe(true);
    },
    180_000,
  );
});
