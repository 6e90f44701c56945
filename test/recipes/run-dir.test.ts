/**
 * The run directory: what happens when the log dir holds a run, torn appends after a crash, the
 * rewind a resumed run does, lr schedules, and the plain-line progress display.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TinkerValidationError } from "../../src/client/errors.js";
import { RecipeEmitter } from "../../src/recipes/events.js";
import { attachProgress } from "../../src/recipes/progress.js";
import { type CheckpointRecord, RunDir, readJsonLines } from "../../src/recipes/run-dir.js";
import { lrMultiplier } from "../../src/recipes/schedule.js";

const record = (step: number): CheckpointRecord => ({
  name: String(step).padStart(6, "0"),
  step,
  epoch: 0,
  batch: step,
  final: false,
  state_path: `tinker://run/weights/${step}`,
  loop_state: { step },
});

describe("RunDir", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tinker-ts-rundir-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("starts a run in a new or empty folder and writes config.json", async () => {
    const run = await RunDir.open(join(dir, "a"), { lr: 1 }, "fail");
    expect(run.resumed).toBe(false);
    expect(JSON.parse(await readFile(join(dir, "a", "config.json"), "utf8"))).toEqual({ lr: 1 });
  });

  it("fails by default on a held folder, naming both other choices, and changes nothing", async () => {
    const run = await RunDir.open(dir, { lr: 1 }, "fail");
    await run.appendMetrics({ step: 0, loss: 2 });
    const err = await RunDir.open(dir, { lr: 1 }, "fail").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TinkerValidationError);
    expect((err as Error).message).toMatch(/ifExists: "resume".*ifExists: "overwrite"/);
    expect((await readJsonLines(join(dir, "metrics.jsonl"))).rows).toHaveLength(1);
  });

  it("overwrite deletes the old run; resume keeps it and needs the same config", async () => {
    const first = await RunDir.open(dir, { lr: 1, nested: { a: 1 } }, "fail");
    await first.appendMetrics({ step: 0, loss: 2 });
    await first.appendCheckpoint(record(1));
    const resumed = await RunDir.open(dir, { nested: { a: 1 }, lr: 1 }, "resume");
    expect(resumed.resumed).toBe(true);
    expect(resumed.lastResumable()?.step).toBe(1);
    const err = await RunDir.open(dir, { lr: 1, nested: { a: 2 } }, "resume").catch(
      (e: unknown) => e,
    );
    expect((err as TinkerValidationError).field).toBe("logDir");
    expect((err as Error).message).toContain("first difference: nested.a");
    const fresh = await RunDir.open(dir, { lr: 2 }, "overwrite");
    expect(fresh.resumed).toBe(false);
    expect((await readJsonLines(join(dir, "metrics.jsonl"))).rows).toEqual([]);
  });

  it("a torn last line (a crash mid-append) is skipped by readers and cut before resuming", async () => {
    const run = await RunDir.open(dir, {}, "fail");
    await run.appendMetrics({ step: 0, loss: 2 });
    await appendFile(join(dir, "metrics.jsonl"), '{"step": 1, "lo');
    expect(await readJsonLines(join(dir, "metrics.jsonl"))).toEqual({
      rows: [{ step: 0, loss: 2 }],
      tornTail: true,
    });
    const resumed = await RunDir.open(dir, {}, "resume");
    await resumed.appendMetrics({ step: 1, loss: 1 });
    expect(await readJsonLines(join(dir, "metrics.jsonl"))).toEqual({
      rows: [
        { step: 0, loss: 2 },
        { step: 1, loss: 1 },
      ],
      tornTail: false,
    });
  });

  it("a corrupted complete line is an error naming the file, the line and the fix", async () => {
    await writeFile(join(dir, "metrics.jsonl"), '{"step": 0}\nnot json\n');
    await expect(readJsonLines(join(dir, "metrics.jsonl"))).rejects.toThrow(
      /metrics\.jsonl line 2 is not valid JSON.*ifExists: "overwrite"/,
    );
  });

  it("rewindTo drops the metrics rows and checkpoint records past the resume point", async () => {
    const run = await RunDir.open(dir, {}, "fail");
    for (let s = 0; s < 5; s++) await run.appendMetrics({ step: s, loss: 5 - s });
    await run.appendCheckpoint(record(2));
    await run.appendCheckpoint(record(4));
    await run.rewindTo(2);
    expect((await run.readMetrics()).map((r) => r.step)).toEqual([0, 1]);
    expect(run.checkpointRecords.map((r) => r.step)).toEqual([2]);
    expect(
      (await readJsonLines<CheckpointRecord>(join(dir, "checkpoints.jsonl"))).rows,
    ).toHaveLength(1);
  });
});

describe("lr schedules", () => {
  it("linear, cosine and constant follow their formulas", () => {
    for (const [step, total] of [
      [0, 10],
      [3, 10],
      [10, 10],
    ] as const) {
      expect(lrMultiplier("linear", step, total)).toBeCloseTo(1 - step / total, 12);
      expect(lrMultiplier("cosine", step, total)).toBeCloseTo(
        0.5 * (1 + Math.cos((Math.PI * step) / total)),
        12,
      );
      expect(lrMultiplier("constant", step, total)).toBe(1);
    }
    expect(() => lrMultiplier("exp" as "linear", 0, 1)).toThrow(/linear, cosine, constant/);
  });
});

describe("progress display", () => {
  it("prints one plain line per step when not on a TTY, with the chosen metrics and tokens/s", () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }) as unknown as NodeJS.WriteStream;
    const events = new RecipeEmitter();
    const detach = attachProgress(events, { label: "sft", keys: ["loss", "missing"], stream });
    events.emit("step", {
      step: 0,
      totalSteps: 2,
      numTokens: 100,
      elapsedSeconds: 1,
      metrics: { step: 0, loss: 2.5 },
    });
    events.emit("step", {
      step: 1,
      totalSteps: 2,
      numTokens: 100,
      elapsedSeconds: 2,
      metrics: { step: 1, loss: 1.25 },
    });
    events.emit("log", "resuming");
    detach();
    events.emit("step", {
      step: 2,
      totalSteps: 2,
      numTokens: 1,
      elapsedSeconds: 3,
      metrics: { step: 2 },
    });
    expect(lines).toEqual([
      "sft step 1/2 loss=2.500 tok/s=0\n",
      "sft step 2/2 loss=1.250 tok/s=200\n",
      "sft: resuming\n",
    ]);
  });
});
